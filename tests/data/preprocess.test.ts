import fs from 'node:fs';
import path from 'node:path';
import sharp from 'sharp';
import { describe, expect, it } from 'vitest';
import { isMenagerieError } from '../../core/errors.js';
import type { InputSpec } from '../../data/input-spec.js';
import { decodeFileToPixels, decodeToPixels, pixelsToTensor } from '../../data/preprocess.js';
import { dctScaleFor } from '../../data/tensorflow-pixels.js';
import type { Tensor3D } from '@tensorflow/tfjs-node';
import { loadTensorflow } from '../../tf/tensorflow.js';
import { AFHQ_MINI, tempDir, writeFile } from '../helpers/fixtures.js';

const spec = (size: number, fit: InputSpec['fit'] = 'fill'): InputSpec => ({
  size,
  channels: 3,
  fit,
  scale: 1 / 255,
  offset: 0,
});

/** RGB of pixel (x, y) in HWC pixels of side `size`. */
const at = (pixels: Uint8Array, size: number, x: number, y: number) =>
  Array.from(pixels.subarray((y * size + x) * 3, (y * size + x) * 3 + 3));

/** A (3 × side)×side image of red | green | blue thirds, encoded by `encode`. */
async function thirds(side: number, encode: (image: sharp.Sharp) => sharp.Sharp) {
  const third = (r: number, g: number, b: number) =>
    sharp({ create: { width: side, height: side, channels: 3, background: { r, g, b } } })
      .png()
      .toBuffer();
  const wide = sharp({
    create: { width: 3 * side, height: side, channels: 3, background: 'black' },
  }).composite([
    { input: await third(255, 0, 0), left: 0, top: 0 },
    { input: await third(0, 255, 0), left: side, top: 0 },
    { input: await third(0, 0, 255), left: 2 * side, top: 0 },
  ]);
  return encode(wide).toBuffer();
}

describe('decodeToPixels', () => {
  it('decodes a real AFHQ JPEG and PNG to size×size×3 with varied content', async () => {
    for (const file of ['cat/cat_001.jpg', 'dog/dog_012.png']) {
      const pixels = await decodeToPixels(fs.readFileSync(path.join(AFHQ_MINI, file)), spec(64));
      expect(pixels).toBeInstanceOf(Uint8Array);
      expect(pixels.length).toBe(64 * 64 * 3);
      expect(new Set(pixels).size).toBeGreaterThan(100);
    }
  });

  it('gives the same pixels for the same bytes (the serving path equals the training path)', async () => {
    const bytes = fs.readFileSync(path.join(AFHQ_MINI, 'wild/wild_001.jpg'));
    const a = await decodeToPixels(bytes, spec(64));
    const b = await decodeToPixels(bytes, spec(64));
    expect(Buffer.from(a).equals(Buffer.from(b))).toBe(true);
  });

  it('expands greyscale to three equal channels', async () => {
    const grey = await sharp({
      create: { width: 20, height: 20, channels: 3, background: { r: 90, g: 90, b: 90 } },
    })
      .toColourspace('b-w')
      .png()
      .toBuffer();
    expect((await sharp(grey).metadata()).channels).toBe(1);
    const pixels = await decodeToPixels(grey, spec(8));
    expect(pixels.length).toBe(8 * 8 * 3);
    expect(at(pixels, 8, 3, 3)).toEqual([90, 90, 90]);
  });

  it('flattens alpha on white', async () => {
    const rgba = await sharp({
      create: { width: 16, height: 16, channels: 4, background: { r: 0, g: 0, b: 0, alpha: 0 } },
    })
      .png()
      .toBuffer();
    const pixels = await decodeToPixels(rgba, spec(8));
    expect(pixels.length).toBe(8 * 8 * 3);
    expect(at(pixels, 8, 4, 4)).toEqual([255, 255, 255]);
  });

  it('applies EXIF orientation before resizing', async () => {
    // Stored landscape, left half red, right half blue; orientation 6 = rotate 90° clockwise.
    const half = (r: number, b: number) =>
      sharp({ create: { width: 40, height: 40, channels: 3, background: { r, g: 0, b } } })
        .png()
        .toBuffer();
    const stored = await sharp({
      create: { width: 80, height: 40, channels: 3, background: 'black' },
    })
      .composite([
        { input: await half(255, 0), left: 0, top: 0 },
        { input: await half(0, 255), left: 40, top: 0 },
      ])
      .jpeg({ quality: 95 })
      .withMetadata({ orientation: 6 })
      .toBuffer();
    const pixels = await decodeToPixels(stored, spec(16));
    const [r1, , b1] = at(pixels, 16, 8, 1);
    const [r2, , b2] = at(pixels, 16, 8, 14);
    // Upright it is portrait: red on top, blue below.
    expect(r1).toBeGreaterThan(200);
    expect(b1).toBeLessThan(60);
    expect(b2).toBeGreaterThan(200);
    expect(r2).toBeLessThan(60);
  });

  it('crops with fit cover and stretches with fit fill', async () => {
    // Cover keeps the middle (green); fill keeps all three.
    const wide = await thirds(20, (image) => image.png());
    const cover = await decodeToPixels(wide, spec(12, 'cover'));
    expect(at(cover, 12, 0, 6)[1]).toBeGreaterThan(200);
    const fill = await decodeToPixels(wide, spec(12, 'fill'));
    expect(at(fill, 12, 0, 6)[0]).toBeGreaterThan(200);
    expect(at(fill, 12, 11, 6)[2]).toBeGreaterThan(200);
  });

  it('throws IMAGE_UNREADABLE naming the image for corrupt bytes', async () => {
    const full = fs.readFileSync(path.join(AFHQ_MINI, 'cat/cat_002.jpg'));
    for (const bad of [Buffer.from('not an image'), full.subarray(0, full.length / 2)]) {
      const error = await decodeToPixels(bad, spec(64), 'image 42').catch((e: unknown) => e);
      expect(isMenagerieError(error, 'IMAGE_UNREADABLE')).toBe(true);
      expect((error as Error).message).toContain('image 42');
    }
  });
});

describe('pixelsToTensor', () => {
  it('stacks images and applies scale then offset', async () => {
    const tf = await loadTensorflow();
    const pixels = [new Uint8Array(2 * 2 * 3).fill(0), new Uint8Array(2 * 2 * 3).fill(255)];
    const mobilenet: InputSpec = {
      size: 2,
      channels: 3,
      fit: 'fill',
      scale: 1 / 127.5,
      offset: -1,
    };
    const xs = pixelsToTensor(tf, pixels, mobilenet);
    expect(xs.shape).toEqual([2, 2, 2, 3]);
    expect(xs.dtype).toBe('float32');
    const values = xs.dataSync();
    expect(values[0]).toBeCloseTo(-1, 6);
    expect(values[values.length - 1]).toBeCloseTo(1, 6);
    xs.dispose();
    expect(() => pixelsToTensor(tf, [new Uint8Array(5)], mobilenet)).toThrow(RangeError);
  });
});

describe("decodeToPixels with the 'tensorflow' decoder", () => {
  const tfSpec = (size: number, fit: InputSpec['fit'] = 'fill'): InputSpec => ({
    ...spec(size, fit),
    decoder: 'tensorflow',
  });
  const photo = () => fs.readFileSync(path.join(AFHQ_MINI, 'cat/cat_001.jpg'));
  const psnr = (a: Uint8Array, b: Uint8Array) => {
    let squares = 0;
    for (let i = 0; i < a.length; i++) squares += (a[i]! - b[i]!) ** 2;
    return 10 * Math.log10((255 * 255) / (squares / a.length));
  };

  it('picks the smallest DCT scale that keeps the size', () => {
    expect(
      [
        [512, 64],
        [512, 65],
        [375, 64],
        [128, 64],
        [127, 64],
        [100, 64],
      ].map(([side, size]) => dctScaleFor(side!, size!)),
    ).toEqual([8, 4, 4, 2, 2, 1]);
  });

  it('gives libjpeg at that scale, bilinear to size if need be: exactly, and near sharp', async () => {
    const tf = await loadTensorflow();
    const bytes = photo();
    // 512×512 to 64: libjpeg at 1/8 is 64×64 already; to 48, that resized bilinearly.
    const pixels = await decodeToPixels(bytes, tfSpec(64));
    const scaled = tf.node.decodeJpeg(bytes, 3, 8) as Tensor3D;
    expect(Array.from(pixels)).toEqual(Array.from(scaled.dataSync()));
    const resized = tf.tidy(() => tf.image.resizeBilinear(scaled, [48, 48], false, true).round());
    expect(Array.from(await decodeToPixels(bytes, tfSpec(48)))).toEqual(
      Array.from(resized.dataSync()),
    );
    tf.dispose([scaled, resized]);
    expect(psnr(pixels, await decodeToPixels(bytes, spec(64)))).toBeGreaterThan(33);
    // The same bytes, the same pixels: training and serving see one image.
    expect(Buffer.from(await decodeToPixels(bytes, tfSpec(64))).equals(pixels)).toBe(true);
  });

  it('decodes progressive and greyscale JPEGs to RGB', async () => {
    const grey = await sharp(photo()).toColourspace('b-w').jpeg().toBuffer();
    const greyPixels = await decodeToPixels(grey, tfSpec(32));
    expect(at(greyPixels, 32, 10, 10).every((v, _, [r]) => v === r)).toBe(true);
    const progressive = await sharp(photo()).jpeg({ progressive: true }).toBuffer();
    const pixels = await decodeToPixels(progressive, tfSpec(32));
    expect(psnr(pixels, await decodeToPixels(photo(), tfSpec(32)))).toBeGreaterThan(40);
  });

  it('sends PNGs, EXIF-turned and CMYK JPEGs the sharp way', async () => {
    const png = fs.readFileSync(path.join(AFHQ_MINI, 'dog/dog_012.png'));
    const turned = await sharp(photo()).jpeg().withMetadata({ orientation: 6 }).toBuffer();
    const cmyk = await sharp(photo()).toColourspace('cmyk').jpeg().toBuffer();
    for (const bytes of [png, turned, cmyk]) {
      const pixels = await decodeToPixels(bytes, tfSpec(48));
      expect(Buffer.from(pixels).equals(Buffer.from(await decodeToPixels(bytes, spec(48))))).toBe(
        true,
      );
    }
  });

  it('crops the centred square with fit cover and stretches with fit fill', async () => {
    // Decoded at 1/8 (75×25) for a 12-pixel side.
    const wide = await thirds(200, (image) => image.jpeg({ quality: 95 }));
    const cover = await decodeToPixels(wide, tfSpec(12, 'cover'));
    expect(at(cover, 12, 0, 6)[1]).toBeGreaterThan(200);
    expect(at(cover, 12, 11, 6)[1]).toBeGreaterThan(200);
    const fill = await decodeToPixels(wide, tfSpec(12, 'fill'));
    expect(at(fill, 12, 0, 6)[0]).toBeGreaterThan(200);
    expect(at(fill, 12, 11, 6)[2]).toBeGreaterThan(200);
  });

  it('decodes a local file in a decoder process to the pixels its bytes give', async () => {
    const dir = tempDir('menagerie-pixels-');
    try {
      const cases = {
        'photo.jpg': [photo(), 0],
        'dog.png': [fs.readFileSync(path.join(AFHQ_MINI, 'dog/dog_012.png')), 1],
        'turned.jpg': [await sharp(photo()).jpeg().withMetadata({ orientation: 6 }).toBuffer(), 1],
        'cmyk.jpg': [await sharp(photo()).toColourspace('cmyk').jpeg().toBuffer(), 1],
      } as const;
      for (const [name, [bytes, reads]] of Object.entries(cases)) {
        const file = writeFile(path.join(dir.dir, name), bytes);
        let read = 0;
        const readBytes = () => {
          read++;
          return Promise.resolve(fs.readFileSync(file));
        };
        const pixels = await decodeFileToPixels(file, tfSpec(64), name, readBytes);
        expect(
          Buffer.from(pixels).equals(Buffer.from(await decodeToPixels(bytes, tfSpec(64)))),
        ).toBe(true);
        // Only what goes the sharp way is read here; the JPEG's bytes never came this way.
        expect(read).toBe(reads);
      }
      const cut = writeFile(path.join(dir.dir, 'cut.jpg'), photo().subarray(0, 9000));
      const unreadable = decodeFileToPixels(cut, tfSpec(64), 'image 9', () =>
        Promise.resolve(fs.readFileSync(cut)),
      );
      await expect(unreadable).rejects.toMatchObject({
        code: 'IMAGE_UNREADABLE',
        message: expect.stringContaining('image 9') as unknown,
      });
      const gone = path.join(dir.dir, 'gone.jpg');
      const missing = new Error('the store says: no blob');
      await expect(
        decodeFileToPixels(gone, tfSpec(64), 'gone', () => Promise.reject(missing)),
      ).rejects.toBe(missing);
    } finally {
      dir.remove();
    }
  });

  it('throws IMAGE_UNREADABLE naming the image for corrupt and truncated JPEGs', async () => {
    const full = photo();
    const header = Buffer.from([0xff, 0xd8, 0xff, 0xe0, 0, 16, ...Buffer.from('JFIF\0')]);
    for (const bad of [header, full.subarray(0, full.length / 2)]) {
      const error = await decodeToPixels(bad, tfSpec(64), 'image 7').catch((e: unknown) => e);
      expect(isMenagerieError(error, 'IMAGE_UNREADABLE')).toBe(true);
      expect((error as Error).message).toContain('image 7');
    }
  });
});
