import sharp from 'sharp';
import { describe, expect, it } from 'vitest';
import { orientedSize, readImageHeader } from '../../data/image-header.js';
import { probeImage, sniffImage } from '../../data/image-probe.js';

/** A stored 40×24 picture (landscape, so an orientation that turns it shows). */
const base = (channels: 3 | 4 = 3, width = 40, height = 24) =>
  sharp({
    create: {
      width,
      height,
      channels,
      background: channels === 4 ? { r: 200, g: 40, b: 90, alpha: 0.5 } : { r: 200, g: 40, b: 90 },
    },
  }).png();

/** What sharp itself reports, the answer readImageHeader must agree with. */
async function sharpSays(bytes: Buffer) {
  const meta = await sharp(bytes).metadata();
  return {
    format: meta.format,
    width: meta.autoOrient.width,
    height: meta.autoOrient.height,
    orientation: meta.orientation ?? 1,
    // A JPEG's components are the channels libvips decodes it to.
    ...(meta.format === 'jpeg' && { components: meta.channels }),
  };
}

async function expectSameAsSharp(bytes: Buffer) {
  const header = readImageHeader(bytes);
  expect(header).toBeDefined();
  expect({
    format: header!.format,
    ...orientedSize(header!),
    orientation: header!.orientation,
    ...(header!.format === 'jpeg' && { components: header!.components }),
  }).toEqual(await sharpSays(bytes));
}

const encoders: Record<string, (image: sharp.Sharp) => sharp.Sharp> = {
  'baseline JPEG': (i) => i.jpeg(),
  'progressive JPEG': (i) => i.jpeg({ progressive: true }),
  'JPEG without chroma subsampling': (i) => i.jpeg({ chromaSubsampling: '4:4:4' }),
  'mozjpeg-encoded JPEG': (i) => i.jpeg({ mozjpeg: true }),
  'CMYK JPEG': (i) => i.toColourspace('cmyk').jpeg(),
  'greyscale JPEG': (i) => i.greyscale().jpeg(),
  'RGB PNG': (i) => i.png(),
  '16-bit PNG': (i) => i.toColourspace('rgb16').png(),
  'palette PNG': (i) => i.png({ palette: true }),
  'interlaced PNG': (i) => i.png({ progressive: true }),
  'lossy WebP': (i) => i.webp(),
  'lossless WebP': (i) => i.webp({ lossless: true }),
};

describe('readImageHeader', () => {
  for (const [name, encode] of Object.entries(encoders)) {
    it(`reads ${name} as sharp does, in all eight EXIF orientations`, async () => {
      const stored = await base().toBuffer();
      await expectSameAsSharp(await encode(sharp(stored)).toBuffer());
      for (let orientation = 1; orientation <= 8; orientation++) {
        const bytes = await encode(sharp(stored)).withMetadata({ orientation }).toBuffer();
        await expectSameAsSharp(bytes);
      }
    });
  }

  it('reads WebP with alpha (the extended VP8X form) and a big odd-sized JPEG', async () => {
    await expectSameAsSharp(
      await sharp(await base(4).toBuffer())
        .webp()
        .toBuffer(),
    );
    await expectSameAsSharp(
      await sharp(await base(4).toBuffer())
        .webp({ lossless: true })
        .toBuffer(),
    );
    await expectSameAsSharp(
      await sharp(await base(3, 3001, 17).toBuffer())
        .jpeg()
        .toBuffer(),
    );
    await expectSameAsSharp(
      await sharp(await base(4, 1, 9).toBuffer())
        .png()
        .toBuffer(),
    );
  });

  it('reads the header of a file truncated after it: decoding, not the header, finds that', async () => {
    const jpeg = await sharp(await base(3, 300, 200).toBuffer())
      .jpeg()
      .toBuffer();
    const cut = jpeg.subarray(0, Math.floor(jpeg.length / 2));
    expect(readImageHeader(cut)).toEqual({
      format: 'jpeg',
      width: 300,
      height: 200,
      orientation: 1,
      components: 3,
    });
    await expect(probeImage(cut)).rejects.toMatchObject({ code: 'IMAGE_UNREADABLE' });
  });

  it('gives undefined (sharp decides) for other formats, text, and headers cut short', async () => {
    const gif = await sharp(await base().toBuffer())
      .gif()
      .toBuffer();
    const tiff = await sharp(await base().toBuffer())
      .tiff()
      .toBuffer();
    const jpeg = await sharp(await base().toBuffer())
      .jpeg()
      .toBuffer();
    const png = await sharp(await base().toBuffer())
      .png()
      .toBuffer();
    const webp = await sharp(await base().toBuffer())
      .webp()
      .toBuffer();
    expect(readImageHeader(gif)).toBeUndefined();
    expect(readImageHeader(tiff)).toBeUndefined();
    expect(readImageHeader(Buffer.from('this is text, not a JPEG\n'))).toBeUndefined();
    expect(readImageHeader(Buffer.alloc(0))).toBeUndefined();
    for (const bytes of [jpeg, png, webp])
      for (const length of [2, 8, 16, 24])
        expect(readImageHeader(bytes.subarray(0, length))).toBeUndefined();
    // A JPEG that is nothing but its start marker and garbage.
    expect(readImageHeader(Buffer.from([0xff, 0xd8, 0xff, 0x00, 0x01, 0x02]))).toBeUndefined();
  });

  it('gives undefined for an animated WebP, whose frames libvips reports its own way', async () => {
    // An extended (VP8X) WebP with its animation flag set: frames are libvips's business.
    const still = await sharp(await base(4).toBuffer())
      .webp()
      .toBuffer();
    expect(still.toString('latin1', 12, 16)).toBe('VP8X');
    const animated = Buffer.from(still);
    animated[20] = animated[20]! | 0x02;
    expect(readImageHeader(still)).toBeDefined();
    expect(readImageHeader(animated)).toBeUndefined();
  });
});

describe('sniffImage and probeImage through the header parser', () => {
  it('refuses a pixel bomb from its JPEG header alone, before any decoding', async () => {
    const jpeg = await sharp(await base().toBuffer())
      .jpeg()
      .toBuffer();
    // Rewrite the frame header to claim 60000×60000: the entropy data never gets looked at.
    const bomb = Buffer.from(jpeg);
    const sof = bomb.indexOf(Buffer.from([0xff, 0xc0]));
    bomb.writeUInt16BE(60000, sof + 5);
    bomb.writeUInt16BE(60000, sof + 7);
    await expect(sniffImage(bomb)).rejects.toMatchObject({ code: 'IMAGE_TOO_LARGE' });
    await expect(probeImage(bomb.subarray(0, sof + 20))).rejects.toMatchObject({
      code: 'IMAGE_TOO_LARGE',
    });
  });

  it('stores the EXIF-oriented size of a phone-style JPEG, and reports formats as before', async () => {
    const stored = await base(3, 80, 40).toBuffer();
    const turned = await sharp(stored).jpeg().withMetadata({ orientation: 6 }).toBuffer();
    expect(await probeImage(turned)).toEqual({ format: 'jpeg', width: 40, height: 80 });
    const gif = await sharp(stored).gif().toBuffer();
    await expect(probeImage(gif)).rejects.toMatchObject({ code: 'IMAGE_UNSUPPORTED_FORMAT' });
    await expect(probeImage(Buffer.from('not an image'))).rejects.toMatchObject({
      code: 'IMAGE_UNREADABLE',
    });
    await expect(probeImage(Buffer.alloc(0))).rejects.toMatchObject({ code: 'IMAGE_EMPTY' });
  });

  it('rejects a PNG, progressive JPEG and WebP cut at 60% or 98% as IMAGE_UNREADABLE', async () => {
    const stored = await base(3, 300, 200).toBuffer();
    for (const bytes of [
      await sharp(stored).png().toBuffer(),
      await sharp(stored).jpeg({ progressive: true }).toBuffer(),
      await sharp(stored).webp().toBuffer(),
    ]) {
      await expect(probeImage(bytes)).resolves.toMatchObject({ width: 300, height: 200 });
      for (const kept of [0.6, 0.98]) {
        const cut = bytes.subarray(0, Math.floor(bytes.length * kept));
        await expect(probeImage(cut)).rejects.toMatchObject({ code: 'IMAGE_UNREADABLE' });
      }
    }
  });
});
