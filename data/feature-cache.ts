import { createHash } from 'node:crypto';
import fs from 'node:fs/promises';
import path from 'node:path';
import { crc32 } from 'node:zlib';
import sharp from 'sharp';
import type { InputSpec } from './input-spec.js';
import { PREPROCESS_VERSION, RESIZE_KERNEL } from './preprocess.js';

/** Feature caches above this total are trimmed, least recently opened first. */
export const DEFAULT_FEATURE_CACHE_MAX_BYTES = 4 * 1024 ** 3;

/** Each record starts with this tag, so a reader can find the next record after a torn one. */
const RECORD_TAG = 0x31525446; // 'FTR1'
/** Tag, view (u16), reserved (u16), image sha256 (32 bytes); then the floats and a crc32. */
const HEADER_BYTES = 4 + 2 + 2 + 32;
const RECORDS_FILE = 'records.bin';
const ENTRY_FILE = 'entry.json';

/** What makes features differ: a different backbone, weights, or preprocessing. */
export interface FeatureCacheIdentity {
  /** The backbone's name, e.g. `menagerie:mobilenet_v2_140`. */
  backbone: string;
  /** sha256 of the backbone's weights. */
  weightsSha256: string;
  /** The preprocessing images go through before the backbone. */
  spec: InputSpec;
  /** Bumped when the augmented views change (their transforms or how they are drawn). */
  viewsVersion: number;
}

/**
 * Backbone features of images, by the image's sha256 and an augmentation view (0 is the
 * image itself), computed once and kept on disk: training a head, evaluating and similar
 * images then never run the backbone twice on the same bytes. One entry per identity, so a
 * new backbone, new weights or new preprocessing can never read stale features.
 */
export interface FeatureCache {
  /** Hex sha256 of the identity: the entry's folder name. */
  readonly key: string;
  readonly featureSize: number;
  /** Records held (image × view). */
  readonly size: number;
  get(sha256: string, view: number): Float32Array | undefined;
  has(sha256: string, view: number): boolean;
  /** Appends records not held yet; safe against kills and against other processes appending. */
  put(records: readonly FeatureRecord[]): Promise<void>;
  close(): Promise<void>;
}

export interface FeatureRecord {
  /** Hex sha256 of the image bytes. */
  sha256: string;
  view: number;
  features: Float32Array;
}

/** The cache key: any change to the identity, libvips, the kernel or preprocessing changes it. */
export function featureCacheKey(identity: FeatureCacheIdentity): string {
  return createHash('sha256')
    .update(
      JSON.stringify({
        ...identity,
        preprocess: PREPROCESS_VERSION,
        vips: sharp.versions.vips,
        kernel: RESIZE_KERNEL,
      }),
    )
    .digest('hex');
}

/**
 * Opens (creating or reading) the feature cache of one identity in
 * `<cacheDir>/features/<key>/`. Records are appended to one file, each tagged and
 * checksummed and written in one `write`, so a kill leaves at most one torn record, which
 * the next open skips; readers resynchronise on the next tag. Opening trims other entries
 * to `maxBytes`, least recently opened first.
 *
 * ```ts
 * const cache = await openFeatureCache({ cacheDir, identity, featureSize: 1792 });
 * if (!cache.has(sha256, 0)) await cache.put([{ sha256, view: 0, features }]);
 * cache.get(sha256, 0); // Float32Array(1792)
 * await cache.close();
 * ```
 */
export async function openFeatureCache(options: {
  cacheDir: string;
  identity: FeatureCacheIdentity;
  featureSize: number;
  maxBytes?: number;
}): Promise<FeatureCache> {
  const { featureSize, identity } = options;
  if (!Number.isInteger(featureSize) || featureSize < 1) {
    throw new RangeError(`featureSize should be a positive integer, got ${featureSize}`);
  }
  const key = featureCacheKey(identity);
  const root = path.join(options.cacheDir, 'features');
  const dir = path.join(root, key);
  await fs.mkdir(dir, { recursive: true });
  await pruneEntries(root, options.maxBytes ?? DEFAULT_FEATURE_CACHE_MAX_BYTES, key);
  await writeEntry(dir, { identity, featureSize });

  const recordBytes = HEADER_BYTES + featureSize * 4 + 4;
  const file = path.join(dir, RECORDS_FILE);
  const held = new Map<string, Float32Array>();
  const existing = await fs.readFile(file).catch(() => Buffer.alloc(0));
  for (const record of scanRecords(existing, featureSize)) {
    held.set(slot(record.sha256, record.view), record.features);
  }
  const handle = await fs.open(file, 'a');
  let writing: Promise<void> = Promise.resolve();

  return {
    key,
    featureSize,
    get size() {
      return held.size;
    },
    get: (sha256, view) => held.get(slot(sha256, view)),
    has: (sha256, view) => held.has(slot(sha256, view)),
    put(records) {
      const fresh = records.filter((r) => !held.has(slot(r.sha256, r.view)));
      if (fresh.length === 0) return writing;
      const buffer = Buffer.alloc(fresh.length * recordBytes);
      fresh.forEach((record, i) =>
        encodeRecord(record, featureSize, buffer.subarray(i * recordBytes)),
      );
      for (const r of fresh) held.set(slot(r.sha256, r.view), Float32Array.from(r.features));
      // One write per batch of records, in order: appends never interleave within a record.
      writing = writing.then(() => handle.write(buffer).then(() => {}));
      return writing;
    },
    async close() {
      await writing;
      await handle.close();
    },
  };
}

function slot(sha256: string, view: number): string {
  return `${view}:${sha256}`;
}

function encodeRecord(record: FeatureRecord, featureSize: number, out: Buffer): void {
  if (record.features.length !== featureSize) {
    throw new RangeError(`features have ${record.features.length} values, expected ${featureSize}`);
  }
  if (!/^[0-9a-f]{64}$/.test(record.sha256)) {
    throw new RangeError(`'${record.sha256}' is not a hex sha256`);
  }
  if (!Number.isInteger(record.view) || record.view < 0 || record.view > 0xffff) {
    throw new RangeError(`view should be an integer in [0, 65535], got ${record.view}`);
  }
  out.writeUInt32LE(RECORD_TAG, 0);
  out.writeUInt16LE(record.view, 4);
  out.writeUInt16LE(0, 6);
  out.write(record.sha256, 8, 32, 'hex');
  const floats = Buffer.from(
    record.features.buffer,
    record.features.byteOffset,
    record.features.byteLength,
  );
  floats.copy(out, HEADER_BYTES);
  const end = HEADER_BYTES + featureSize * 4;
  out.writeUInt32LE(crc32(out.subarray(4, end)), end);
}

/** Every intact record of `bytes`, skipping torn or corrupt ones by finding the next tag. */
function* scanRecords(bytes: Buffer, featureSize: number): Generator<FeatureRecord> {
  const recordBytes = HEADER_BYTES + featureSize * 4 + 4;
  const end = HEADER_BYTES + featureSize * 4;
  let at = 0;
  while (at + recordBytes <= bytes.length) {
    const record = bytes.subarray(at, at + recordBytes);
    if (
      record.readUInt32LE(0) === RECORD_TAG &&
      crc32(record.subarray(4, end)) === record.readUInt32LE(end)
    ) {
      const floats = new Float32Array(featureSize);
      Buffer.from(floats.buffer).set(record.subarray(HEADER_BYTES, end));
      yield {
        view: record.readUInt16LE(4),
        sha256: record.subarray(8, 40).toString('hex'),
        features: floats,
      };
      at += recordBytes;
    } else {
      const next = bytes.indexOf(TAG_BYTES, at + 1);
      if (next < 0) return;
      at = next;
    }
  }
}

const TAG_BYTES = (() => {
  const tag = Buffer.alloc(4);
  tag.writeUInt32LE(RECORD_TAG, 0);
  return tag;
})();

/** Writes (and so touches) the entry's description: what "recently opened" means. */
async function writeEntry(dir: string, entry: object): Promise<void> {
  const file = path.join(dir, ENTRY_FILE);
  const temp = `${file}.${process.pid}.tmp`;
  await fs.writeFile(temp, JSON.stringify(entry));
  await fs.rename(temp, file);
}

/** Deletes entries, least recently opened first, until the rest fit in `maxBytes`. */
async function pruneEntries(root: string, maxBytes: number, keep: string): Promise<void> {
  const names = await fs.readdir(root).catch(() => [] as string[]);
  const entries: { dir: string; bytes: number; usedAt: number }[] = [];
  for (const name of names) {
    if (name === keep) continue;
    const dir = path.join(root, name);
    const [records, entry] = await Promise.all(
      [RECORDS_FILE, ENTRY_FILE].map((f) => fs.stat(path.join(dir, f)).catch(() => null)),
    );
    entries.push({ dir, bytes: records?.size ?? 0, usedAt: entry?.mtimeMs ?? 0 });
  }
  let total = entries.reduce((sum, e) => sum + e.bytes, 0);
  entries.sort((a, b) => a.usedAt - b.usedAt);
  for (const entry of entries) {
    if (total <= maxBytes) break;
    await fs.rm(entry.dir, { recursive: true, force: true });
    total -= entry.bytes;
  }
}
