import fs from 'node:fs';
import path from 'node:path';
import sharp from 'sharp';
import { afterEach, describe, expect, it } from 'vitest';
import { AUTO_TENSORFLOW_FILES, ingestImages } from '../../data/ingest/ingest.js';
import { probeImage } from '../../data/image-probe.js';
import { jpegScaleFor, tensorflowJpegDecoder } from '../../data/tensorflow-jpeg-decoder.js';
import { AFHQ_MINI, makeImage, tempDir, writeFile } from '../helpers/fixtures.js';
import { tempWorkspace } from '../helpers/workspace.js';

/** sharp's own verdict on bytes, the one the TensorFlow decoder must never be laxer than. */
const sharpAccepts = (bytes: Buffer) =>
  sharp(bytes, { failOn: 'truncated' })
    .resize(32, 32, { fit: 'inside' })
    .raw()
    .toBuffer()
    .then(
      () => true,
      () => false,
    );

describe('tensorflowJpegDecoder', () => {
  const cleanups: (() => unknown)[] = [];
  afterEach(async () => {
    for (const c of cleanups.splice(0)) await c();
  });

  it('decodes at the DCT scale sharp shrinks on load at', () => {
    expect([1, 1.5, 2, 3, 4, 7.9, 8, 15.9, 16, 100].map(jpegScaleFor)).toEqual([
      1, 1, 1, 2, 2, 4, 4, 8, 8, 8,
    ]);
  });

  it('decodes real, progressive, CMYK and greyscale JPEGs', async () => {
    const decode = await tensorflowJpegDecoder();
    const photo = fs.readFileSync(path.join(AFHQ_MINI, 'cat/cat_001.jpg'));
    const picture = await sharp(photo).resize(300, 200).toBuffer();
    for (const bytes of [
      photo,
      await sharp(picture).jpeg({ progressive: true }).toBuffer(),
      await sharp(picture).toColourspace('cmyk').jpeg().toBuffer(),
      await sharp(picture).greyscale().jpeg().toBuffer(),
    ]) {
      expect(() => decode(bytes, 16)).not.toThrow();
      expect(() => decode(bytes, 1)).not.toThrow();
    }
  });

  it('rejects every cut of a JPEG that sharp rejects, and accepts none sharp rejects', async () => {
    const decode = await tensorflowJpegDecoder();
    const photo = fs.readFileSync(path.join(AFHQ_MINI, 'cat/cat_001.jpg'));
    const progressive = await sharp(photo).jpeg({ progressive: true }).toBuffer();
    for (const bytes of [photo, progressive]) {
      for (const kept of [0.1, 0.3, 0.6, 0.9, 0.98, 0.999]) {
        const cut = bytes.subarray(0, Math.floor(bytes.length * kept));
        let accepted = true;
        try {
          decode(cut, 16);
        } catch {
          accepted = false;
        }
        expect(accepted).toBe(false);
        expect(await sharpAccepts(cut)).toBe(false);
        await expect(probeImage(cut, { decodeJpeg: decode })).rejects.toMatchObject({
          code: 'IMAGE_UNREADABLE',
        });
      }
    }
  });

  it('ingests with jpegDecoder tensorflow as with sharp: same rows, same rejections', async () => {
    const src = tempDir('menagerie-src-');
    cleanups.push(src.remove);
    const full = await makeImage(3, { size: 128 });
    writeFile(path.join(src.dir, 'train/cat/good.jpg'), await makeImage(1, { size: 96 }));
    writeFile(path.join(src.dir, 'train/dog/picture.png'), await makeImage(2, { format: 'png' }));
    writeFile(path.join(src.dir, 'train/dog/cut.jpg'), full.subarray(0, full.length - 40));
    writeFile(path.join(src.dir, 'val/wild/notes.jpg'), 'this is text, not a JPEG\n');
    const reports = [];
    const runs = [
      { jpegDecoder: 'sharp', reference: false },
      { jpegDecoder: 'tensorflow', reference: false },
      // By reference, sharp decodes some files alongside TensorFlow.
      { jpegDecoder: 'tensorflow', reference: true },
      { jpegDecoder: 'auto', reference: true },
    ] as const;
    for (const { jpegDecoder, reference } of runs) {
      const ws = await tempWorkspace();
      cleanups.push(ws.dispose);
      const report = await ingestImages(ws, { source: src.dir, jpegDecoder, reference });
      // A folder this small is not worth loading TensorFlow for.
      expect(report.jpegDecoder).toBe(jpegDecoder === 'auto' ? 'sharp' : jpegDecoder);
      const rows = await ws.database.db
        .selectFrom('images')
        .select(['sha256', 'width', 'height', 'format'])
        .orderBy('sha256')
        .execute();
      reports.push({
        rows,
        rejected: report.rejected.map((r) => [path.basename(r.path), r.reason]).sort(),
      });
    }
    for (const report of reports.slice(1)) expect(report).toEqual(reports[0]);
    expect(reports[0]!.rows).toHaveLength(2);
    expect(reports[0]!.rejected).toEqual([
      ['cut.jpg', 'unreadable'],
      ['notes.jpg', 'unreadable'],
    ]);
  });

  it('auto picks TensorFlow for a folder of AUTO_TENSORFLOW_FILES files or more', async () => {
    const src = tempDir('menagerie-src-');
    cleanups.push(src.remove);
    const jpeg = await makeImage(5, { size: 16 });
    for (let i = 0; i < AUTO_TENSORFLOW_FILES; i++)
      writeFile(path.join(src.dir, `train/cat/${i}.jpg`), jpeg);
    const ws = await tempWorkspace();
    cleanups.push(ws.dispose);
    const report = await ingestImages(ws, {
      source: src.dir,
      jpegDecoder: 'auto',
      reference: true,
    });
    expect(report.jpegDecoder).toBe('tensorflow');
    expect(report.added).toBe(1); // the same bytes a thousand times: stored once
    expect(report.duplicates).toHaveLength(AUTO_TENSORFLOW_FILES - 1);
  });
});
