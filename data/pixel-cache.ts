import { createHash } from 'node:crypto';
import fs from 'node:fs/promises';
import path from 'node:path';
import { crc32 } from 'node:zlib';
import sharp from 'sharp';
import { decoderOf, type InputSpec } from './input-spec.js';
import { PREPROCESS_VERSION, RESIZE_KERNEL } from './preprocess.js';

/** Caches above this total are trimmed, least recently used first. */
export const DEFAULT_CACHE_MAX_BYTES = 2 * 1024 ** 3;
/** A cache up to this size is read once into memory; larger ones are read record by record. */
export const DEFAULT_CACHE_MAX_IN_MEMORY_BYTES = 256 * 1024 ** 2;

/** Index slot of a written record: this tag, then the record's crc32. */
const FILLED_TAG = 0x50584c31; // 'PXL1'
const SLOT_BYTES = 8;

export interface CachedImage {
  id: number;
  sha256: string;
}

/**
 * Resized uint8 pixels of one ordered image set under one input spec, on disk, so epochs
 * after the first decode no JPEG. Record `i` holds image `i`'s `size × size × 3` bytes.
 */
export interface PixelCache {
  /** Hex sha256 of the image ids, their sha256 and the spec: the entry's folder name. */
  readonly key: string;
  readonly count: number;
  /** Records already written, by this process or an earlier one. */
  readonly filled: number;
  has(index: number): boolean;
  /** The pixels of a written record; the view is valid until close(). */
  read(index: number): Promise<Uint8Array>;
  /** Stores a record; once all are written the entry is marked complete. */
  write(index: number, pixels: Uint8Array): Promise<void>;
  close(): Promise<void>;
}

interface EntryManifest {
  key: string;
  count: number;
  recordBytes: number;
  size: number;
  fit: InputSpec['fit'];
  complete: boolean;
}

/**
 * The cache key: changes whenever an image is added, removed or replaced, or the size, fit,
 * decoder, kernel, preprocessing version or libvips version changes, any of which changes
 * pixels.
 */
export function pixelCacheKey(images: readonly CachedImage[], spec: InputSpec): string {
  const hash = createHash('sha256');
  hash.update(
    JSON.stringify({
      preprocess: PREPROCESS_VERSION,
      vips: sharp.versions.vips,
      kernel: RESIZE_KERNEL,
      size: spec.size,
      fit: spec.fit,
      // Named only when not sharp, so caches built before decoders had names stay valid.
      ...(decoderOf(spec) !== 'sharp' && { decoder: decoderOf(spec) }),
    }),
  );
  for (const image of images) hash.update(`\n${image.id}:${image.sha256}`);
  return hash.digest('hex');
}

/**
 * Opens (creating or resuming) the pixel cache for `images` under `spec` in
 * `<cacheDir>/pixels/<key>/`. Layout: `pixels.bin` (fixed-size records, positional
 * writes), `index.bin` (per record a tag and crc32, written after the record), and
 * `entry.json` (replaced atomically; `complete: true` only after both files are fsynced).
 * A build killed half way resumes: records whose index slot and crc check out are kept,
 * the rest are decoded again. Opening trims other entries to `maxBytes`, least recently
 * opened first; opening touches `entry.json`, which is what "recently" means.
 *
 * ```ts
 * const cache = await openPixelCache({ cacheDir: '.menagerie/cache', images, spec });
 * if (!cache.has(0)) await cache.write(0, await decodeToPixels(bytes, spec));
 * const pixels = await cache.read(0);
 * await cache.close();
 * ```
 */
export async function openPixelCache(options: {
  cacheDir: string;
  images: readonly CachedImage[];
  spec: InputSpec;
  maxBytes?: number;
  maxInMemoryBytes?: number;
}): Promise<PixelCache> {
  const { spec, images } = options;
  const key = pixelCacheKey(images, spec);
  const root = path.join(options.cacheDir, 'pixels');
  const dir = path.join(root, key);
  const count = images.length;
  const recordBytes = spec.size * spec.size * 3;
  const totalBytes = count * recordBytes;
  await fs.mkdir(dir, { recursive: true });
  const manifest = await readManifest(dir);
  const reuse = manifest?.count === count && manifest.recordBytes === recordBytes;
  await pruneCaches(root, options.maxBytes ?? DEFAULT_CACHE_MAX_BYTES, key, totalBytes);

  const pixelsFile = await fs.open(path.join(dir, 'pixels.bin'), reuse ? 'r+' : 'w+');
  const indexFile = await fs.open(path.join(dir, 'index.bin'), reuse ? 'r+' : 'w+');
  if (!reuse) {
    await pixelsFile.truncate(totalBytes);
    await indexFile.truncate(count * SLOT_BYTES);
  }
  const entry: EntryManifest = {
    key,
    count,
    recordBytes,
    size: spec.size,
    fit: spec.fit,
    complete: reuse && manifest.complete,
  };
  if (!reuse) await writeManifest(dir, entry);
  else await touch(dir);

  const inMemory = totalBytes <= (options.maxInMemoryBytes ?? DEFAULT_CACHE_MAX_IN_MEMORY_BYTES);
  const memory = inMemory ? Buffer.alloc(totalBytes) : null;
  const isFilled = new Uint8Array(count);
  let filled = 0;
  if (reuse) {
    const index = Buffer.alloc(count * SLOT_BYTES);
    await indexFile.read(index, 0, index.length, 0);
    if (memory) await pixelsFile.read(memory, 0, totalBytes, 0);
    const record = Buffer.alloc(recordBytes);
    for (let i = 0; i < count; i++) {
      if (index.readUInt32LE(i * SLOT_BYTES) !== FILLED_TAG) continue;
      // A complete entry was fsynced before it was marked; a partial one is verified.
      if (!entry.complete) {
        const bytes = memory ? memory.subarray(i * recordBytes, (i + 1) * recordBytes) : record;
        if (!memory) await pixelsFile.read(record, 0, recordBytes, i * recordBytes);
        if (crc32(bytes) !== index.readUInt32LE(i * SLOT_BYTES + 4)) continue;
      }
      isFilled[i] = 1;
      filled++;
    }
  }

  let finishing: Promise<void> | undefined;
  const pendingWrites = new Set<Promise<void>>();
  const finish = async (): Promise<void> => {
    await Promise.all(pendingWrites);
    await pixelsFile.sync();
    await indexFile.sync();
    entry.complete = true;
    // Another process may have trimmed this entry away; the cache then simply stays partial.
    await writeManifest(dir, entry).catch(() => {});
  };

  if (filled === count && !entry.complete) finishing = finish();

  const cache: PixelCache = {
    key,
    count,
    get filled() {
      return filled;
    },
    has: (index) => isFilled[index] === 1,
    async read(index) {
      if (isFilled[index] !== 1) throw new RangeError(`pixel cache record ${index} is not written`);
      const offset = index * recordBytes;
      if (memory) return memory.subarray(offset, offset + recordBytes);
      const record = Buffer.alloc(recordBytes);
      await pixelsFile.read(record, 0, recordBytes, offset);
      return record;
    },
    async write(index, pixels) {
      if (pixels.length !== recordBytes) {
        throw new RangeError(`pixel record has ${pixels.length} bytes, expected ${recordBytes}`);
      }
      if (isFilled[index] === 1) return;
      const write = (async () => {
        await pixelsFile.write(pixels, 0, recordBytes, index * recordBytes);
        const slot = Buffer.alloc(SLOT_BYTES);
        slot.writeUInt32LE(FILLED_TAG, 0);
        slot.writeUInt32LE(crc32(pixels), 4);
        await indexFile.write(slot, 0, SLOT_BYTES, index * SLOT_BYTES);
      })();
      pendingWrites.add(write);
      try {
        await write;
      } finally {
        pendingWrites.delete(write);
      }
      memory?.set(pixels, index * recordBytes);
      if (isFilled[index] === 1) return;
      isFilled[index] = 1;
      filled++;
      if (filled === count && !entry.complete) finishing ??= finish();
    },
    async close() {
      await Promise.allSettled(pendingWrites);
      await finishing;
      await pixelsFile.close();
      await indexFile.close();
    },
  };
  return cache;
}

/**
 * Deletes cache entries, least recently opened first, until the others plus `incoming`
 * bytes fit in `maxBytes`. The entry `keep` is never deleted.
 */
async function pruneCaches(
  root: string,
  maxBytes: number,
  keep: string,
  incoming: number,
): Promise<void> {
  const names = await fs.readdir(root).catch(() => [] as string[]);
  const entries: { dir: string; bytes: number; usedAt: number }[] = [];
  for (const name of names) {
    if (name === keep) continue;
    const dir = path.join(root, name);
    const [pixels, index, manifest] = await Promise.all(
      ['pixels.bin', 'index.bin', 'entry.json'].map((f) =>
        fs.stat(path.join(dir, f)).catch(() => null),
      ),
    );
    entries.push({
      dir,
      bytes: (pixels?.size ?? 0) + (index?.size ?? 0),
      usedAt: manifest?.mtimeMs ?? 0,
    });
  }
  let total = incoming + entries.reduce((sum, e) => sum + e.bytes, 0);
  entries.sort((a, b) => a.usedAt - b.usedAt);
  for (const entry of entries) {
    if (total <= maxBytes) break;
    await fs.rm(entry.dir, { recursive: true, force: true });
    total -= entry.bytes;
  }
}

async function readManifest(dir: string): Promise<EntryManifest | null> {
  try {
    return JSON.parse(await fs.readFile(path.join(dir, 'entry.json'), 'utf8')) as EntryManifest;
  } catch {
    return null;
  }
}

async function writeManifest(dir: string, entry: EntryManifest): Promise<void> {
  const file = path.join(dir, 'entry.json');
  const temp = `${file}.${process.pid}.tmp`;
  await fs.writeFile(temp, JSON.stringify(entry));
  await fs.rename(temp, file);
}

async function touch(dir: string): Promise<void> {
  const now = new Date();
  await fs.utimes(path.join(dir, 'entry.json'), now, now).catch(() => {});
}
