import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import sharp from 'sharp';
import { afterEach, describe, expect, it } from 'vitest';
import { AUTO_TENSORFLOW_FILES, ingestImages } from '../../data/ingest/ingest.js';
import { probeImage } from '../../data/image-probe.js';
import {
  jpegScaleFor,
  tensorflowJpegDecoder,
  type JpegDecoderProcesses,
} from '../../data/tensorflow-jpeg-decoder.js';
import { tensorflowScale } from '../../data/tensorflow-pixels.js';
import { AFHQ_MINI, makeImage, REPO_ROOT, tempDir, writeFile } from '../helpers/fixtures.js';
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

const photo = () => fs.readFileSync(path.join(AFHQ_MINI, 'cat/cat_001.jpg'));

/** Whether a process of that id still runs (a zombie counts as ended). */
const running = (pid: number) => {
  try {
    return !fs.readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.startsWith('Z');
  } catch {
    return false;
  }
};

async function until(condition: () => boolean, what: string, ms = 20_000): Promise<void> {
  for (const end = Date.now() + ms; !condition();) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

describe('tensorflowJpegDecoder', () => {
  const cleanups: (() => unknown)[] = [];
  afterEach(async () => {
    for (const c of cleanups.splice(0)) await c();
  });
  const decoder = async (processes = 1): Promise<JpegDecoderProcesses> => {
    const jpeg = await tensorflowJpegDecoder({ processes });
    cleanups.push(jpeg.close);
    return jpeg;
  };

  it('decodes at the DCT scale sharp shrinks on load at', () => {
    expect([1, 1.5, 2, 3, 4, 7.9, 8, 15.9, 16, 100].map(jpegScaleFor)).toEqual([
      1, 1, 1, 2, 2, 4, 4, 8, 8, 8,
    ]);
  });

  it('decodes real, progressive, CMYK and greyscale JPEGs', async () => {
    const { decode } = await decoder(2);
    const picture = await sharp(photo()).resize(300, 200).toBuffer();
    for (const bytes of [
      photo(),
      await sharp(picture).jpeg({ progressive: true }).toBuffer(),
      await sharp(picture).toColourspace('cmyk').jpeg().toBuffer(),
      await sharp(picture).greyscale().jpeg().toBuffer(),
    ]) {
      await decode(bytes, 16);
      await decode(bytes, 1);
    }
  });

  it('rejects every cut of a JPEG that sharp rejects, and accepts none sharp rejects', async () => {
    const { decode } = await decoder();
    const progressive = await sharp(photo()).jpeg({ progressive: true }).toBuffer();
    for (const bytes of [photo(), progressive]) {
      for (const kept of [0.1, 0.3, 0.6, 0.9, 0.98, 0.999]) {
        const cut = bytes.subarray(0, Math.floor(bytes.length * kept));
        await expect(decode(cut, 16)).rejects.toThrow();
        expect(await sharpAccepts(cut)).toBe(false);
        await expect(probeImage(cut, { decodeJpeg: decode })).rejects.toMatchObject({
          code: 'IMAGE_UNREADABLE',
        });
      }
    }
  });

  it('answers files asked for together each with its own pixels or fault', async () => {
    const jpeg = await decoder(2);
    const { dir, remove } = tempDir();
    cleanups.push(remove);
    const photoBytes = photo();
    const files = {
      photo: writeFile(path.join(dir, 'photo.jpg'), photoBytes),
      drawn: writeFile(path.join(dir, 'drawn.jpg'), await makeImage(3, { size: 200 })),
      png: writeFile(path.join(dir, 'drawn.png'), await makeImage(4, { format: 'png' })),
      cut: writeFile(path.join(dir, 'cut.jpg'), photoBytes.subarray(0, photoBytes.length / 2)),
      missing: path.join(dir, 'missing.jpg'),
    };
    // Asked for in one turn, so they go to the processes as one message each.
    const asked = Object.values(files).map((file) =>
      jpeg.pixelsOfFile(file, { size: 64, fit: 'cover' }),
    );
    const [photoPixels, drawnPixels, png, cut, missing] = await Promise.allSettled(asked);
    for (const [result, file] of [
      [photoPixels, files.photo],
      [drawnPixels, files.drawn],
    ] as const) {
      const bytes = fs.readFileSync(file);
      const alone = await jpeg.pixels(bytes, {
        scale: tensorflowScale(bytes, 64)!,
        size: 64,
        fit: 'cover',
      });
      expect(result).toEqual({ status: 'fulfilled', value: alone });
    }
    expect(png).toEqual({ status: 'fulfilled', value: undefined }); // the sharp way
    expect(cut?.status).toBe('rejected');
    expect(missing).toMatchObject({
      status: 'rejected',
      reason: { message: expect.stringContaining('ENOENT') as unknown },
    });
  });

  it('fails only the decodes a killed process held, and starts it again', async () => {
    const jpeg = await decoder();
    const { dir, remove } = tempDir();
    cleanups.push(remove);
    const file = writeFile(path.join(dir, 'photo.jpg'), photo());
    // Bytes go one a message, files asked for together as one.
    const asks: (() => Promise<unknown>)[] = [
      () => jpeg.decode(photo(), 16),
      () => jpeg.pixelsOfFile(file, { size: 64, fit: 'fill' }),
    ];
    for (const ask of asks) {
      const [first] = jpeg.pids();
      const decodes = Array.from({ length: 200 }, ask);
      process.kill(first!, 'SIGKILL');
      const results = await Promise.allSettled(decodes);
      const failed = results.flatMap((r) => (r.status === 'rejected' ? [r.reason as unknown] : []));
      expect(failed.length).toBeGreaterThan(0);
      for (const error of failed) {
        expect(error).toMatchObject({
          code: 'TF_BACKEND_UNAVAILABLE',
          message: expect.stringContaining('was killed by SIGKILL') as unknown,
        });
      }
      await ask();
      expect(jpeg.pids()).toHaveLength(1);
      expect(jpeg.pids()[0]).not.toBe(first);
      expect(jpeg.alive()).toBe(true);
    }
  });

  it('gives up after three restarts, and then fails fast', async () => {
    const jpeg = await decoder();
    for (let death = 1; death <= 4; death++) {
      await jpeg.decode(photo(), 16); // waits for the restarted process to be up
      const [pid] = jpeg.pids();
      process.kill(pid!, 'SIGKILL');
      await until(() => jpeg.pids()[0] !== pid, 'the death to be seen');
    }
    await until(() => !jpeg.alive(), 'the decoder to give up');
    await expect(jpeg.decode(photo(), 16)).rejects.toMatchObject({
      code: 'TF_BACKEND_UNAVAILABLE',
      message: 'no TensorFlow JPEG process left',
    });
  });

  it.each(['ends by itself', 'is killed', 'closes it and starts another'])(
    'leaves no process behind when the caller %s',
    async (how) => {
      const dir = tempDir('menagerie-jpeg-');
      cleanups.push(dir.remove);
      const script = writeFile(
        path.join(dir.dir, 'caller.mjs'),
        `import fs from 'node:fs';
const { tensorflowJpegDecoder } = await import(${JSON.stringify(
          path.join(REPO_ROOT, 'data/tensorflow-jpeg-decoder.ts'),
        )});
const photo = fs.readFileSync(${JSON.stringify(path.join(AFHQ_MINI, 'cat/cat_001.jpg'))});
const jpeg = await tensorflowJpegDecoder({ processes: 2 });
await jpeg.decode(photo, 16);
console.log(JSON.stringify(jpeg.pids()));
// Without close(): an idle decoder must not keep this process running.
if (process.argv[2] === 'is killed') setInterval(() => undefined, 1000);
// Nothing else holds this process open while close() waits, nor while the next one starts.
if (process.argv[2] === 'closes it and starts another') {
  await jpeg.close();
  const again = await tensorflowJpegDecoder({ processes: 1 });
  await again.decode(photo, 16);
  await again.close();
  console.log('done');
}
`,
      );
      const caller = spawn(process.execPath, ['--import', 'tsx', script, how], {
        cwd: REPO_ROOT,
        stdio: ['ignore', 'pipe', 'inherit'],
      });
      const exited = new Promise<number | null>((resolve) => caller.on('exit', resolve));
      // A test that fails before the caller ends must not leave it (and its decoders) running.
      cleanups.push(
        () => caller.exitCode === null && caller.signalCode === null && caller.kill('SIGKILL'),
      );
      let out = '';
      caller.stdout.on('data', (chunk: Buffer) => (out += chunk.toString()));
      await until(() => out.includes(']'), 'the decoder to start', 60_000);
      const pids = JSON.parse(out.split('\n')[0]!) as number[];
      expect(pids).toHaveLength(2);
      if (how === 'is killed') caller.kill('SIGKILL');
      expect(await exited).toBe(how === 'is killed' ? null : 0);
      if (how === 'closes it and starts another') expect(out).toContain('done');
      await until(() => !pids.some(running), 'the decoder processes to end');
    },
    90_000,
  );

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
