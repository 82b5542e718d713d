import fs from 'node:fs/promises';
import path from 'node:path';
import { createRng } from '../core/random.js';
import { DEMO_LABELS, renderFace, type DemoLabel } from './face-drawing.js';

/**
 * Bumped whenever the drawing changes, so a re-run redraws files made by an older
 * generator instead of skipping them as identical.
 */
const GENERATOR_VERSION = 1;

export interface DemoDatasetOptions {
  /** Root folder; receives `train/<label>/` and `val/<label>/`. */
  dir: string;
  /** Images per class across both splits. */
  perClass: number;
  /** Same seed, same bytes. Defaults to `'menagerie-demo'`. */
  seed?: number | string;
  /** Share of each class held out for validation, 0–1; 0.15 unless given. */
  valFraction?: number;
  /** Image side in pixels; 512 unless given. */
  size?: number;
  /** Images rendered at once; 4 unless given. */
  concurrency?: number;
  /** Called after each image is written or skipped. */
  onProgress?: (done: number, total: number) => void;
}

export type DemoSplit = 'train' | 'val';

export interface DemoDatasetResult {
  dir: string;
  /** Images in the set, written now or kept from an earlier run. */
  files: number;
  counts: Record<DemoSplit, Record<DemoLabel, number>>;
}

/**
 * Writes a procedural cat/dog/wild face data set in the AFHQ layout:
 * `<dir>/train/cat/cat_00001.jpg` … `<dir>/val/wild/wild_00100.jpg`. Image `i` of a class
 * depends only on (seed, label, i); the last `valFraction` of each class's numbers form
 * the validation split. Files appear atomically, and a file already written by the same
 * generator with the same seed and size is kept, so an interrupted run can simply be
 * repeated.
 *
 * ```ts
 * import { writeDemoDataset } from './demo/demo-dataset.js';
 *
 * const { counts } = await writeDemoDataset({ dir: '/tmp/afhq-demo', perClass: 100, seed: 7 });
 * counts.val.cat; // 15
 * ```
 */
export async function writeDemoDataset(options: DemoDatasetOptions): Promise<DemoDatasetResult> {
  const { dir, perClass } = options;
  const seed = options.seed ?? 'menagerie-demo';
  const valFraction = options.valFraction ?? 0.15;
  const size = options.size ?? 512;
  if (!Number.isInteger(perClass) || perClass < 1) {
    throw new RangeError(`perClass should be a positive integer, instead got ${perClass}`);
  }
  if (!(valFraction >= 0 && valFraction <= 1)) {
    throw new RangeError(`valFraction should be between 0 and 1, instead got ${valFraction}`);
  }
  const valCount = Math.round(perClass * valFraction);
  const root = createRng(seed);
  const counts: DemoDatasetResult['counts'] = { train: zeroCounts(), val: zeroCounts() };

  const jobs = DEMO_LABELS.flatMap((label) =>
    Array.from({ length: perClass }, (_, k) => {
      const index = k + 1;
      const split: DemoSplit = index > perClass - valCount ? 'val' : 'train';
      counts[split][label] += 1;
      const name = `${label}_${String(index).padStart(5, '0')}.jpg`;
      return { label, index, file: path.join(dir, split, label, name) };
    }),
  );
  await Promise.all(
    (['train', 'val'] as const).flatMap((split) =>
      DEMO_LABELS.map((label) => fs.mkdir(path.join(dir, split, label), { recursive: true })),
    ),
  );

  let done = 0;
  await runPool(jobs, options.concurrency ?? 4, async ({ label, index, file }) => {
    // The key rides in a JPEG comment, so checking it reads a few bytes, not the image.
    const key = Buffer.from(
      `menagerie-demo v${GENERATOR_VERSION} seed=${root.seed} ${label} ${index} ${size}`,
    );
    if (!(await hasKey(file, key))) {
      const jpeg = await renderFace(label, root.fork(label).fork(String(index)), { size });
      await writeAtomically(file, withComment(jpeg, key));
    }
    done += 1;
    options.onProgress?.(done, jobs.length);
  });
  return { dir, files: jobs.length, counts };
}

function zeroCounts(): Record<DemoLabel, number> {
  return { cat: 0, dog: 0, wild: 0 };
}

async function runPool<T>(
  items: T[],
  concurrency: number,
  work: (item: T) => Promise<void>,
): Promise<void> {
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < items.length) {
      const item = items[next++] as T;
      await work(item);
    }
  };
  await Promise.all(
    Array.from({ length: Math.max(1, Math.min(concurrency, items.length)) }, worker),
  );
}

async function writeAtomically(file: string, bytes: Buffer): Promise<void> {
  const temp = `${file}.${process.pid}.tmp`;
  await fs.writeFile(temp, bytes);
  await fs.rename(temp, file);
}

const SOI_LENGTH = 2;

/** Inserts a COM segment after the JPEG's SOI and APP0 (JFIF) markers. */
function withComment(jpeg: Buffer, text: Buffer): Buffer {
  const at = commentOffset(jpeg);
  return Buffer.concat([jpeg.subarray(0, at), commentSegment(text), jpeg.subarray(at)]);
}

function commentSegment(text: Buffer): Buffer {
  const header = Buffer.from([0xff, 0xfe, 0, 0]);
  header.writeUInt16BE(text.length + 2, 2);
  return Buffer.concat([header, text]);
}

/** Where withComment puts the comment: after SOI, and after APP0 when there is one. */
function commentOffset(jpeg: Buffer): number {
  const hasApp0 = jpeg.length >= 6 && jpeg[SOI_LENGTH] === 0xff && jpeg[SOI_LENGTH + 1] === 0xe0;
  return hasApp0 ? SOI_LENGTH + 2 + jpeg.readUInt16BE(SOI_LENGTH + 2) : SOI_LENGTH;
}

/** Whether `file` is a JPEG carrying exactly the comment `key` where withComment puts it. */
async function hasKey(file: string, key: Buffer): Promise<boolean> {
  const handle = await fs.open(file, 'r').catch(() => null);
  if (!handle) return false;
  try {
    const head = Buffer.alloc(512 + key.length);
    const { bytesRead } = await handle.read(head, 0, head.length, 0);
    const bytes = head.subarray(0, bytesRead);
    const segment = commentSegment(key);
    const at = commentOffset(bytes);
    return bytes.subarray(at, at + segment.length).equals(segment);
  } finally {
    await handle.close();
  }
}
