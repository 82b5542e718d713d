import os from 'node:os';
import type { Tensor4D } from '@tensorflow/tfjs-node';
import type { Kysely } from 'kysely';
import sharp from 'sharp';
import type { BlobStore } from './blob-store.js';
import type { Batch, ImageDataset } from './dataset.js';
import { MenagerieError, isMenagerieError } from '../core/errors.js';
import { decoderOf, type InputSpec } from './input-spec.js';
import { limiter, loadDatasetRecords, oneHot, shuffleInPlace } from './dataset-records.js';
import { openPixelCache, type PixelCache } from './pixel-cache.js';
import {
  decodeFileToPixels,
  decodeToPixels,
  pixelsToTensor,
  prepareDecoder,
} from './preprocess.js';
import { createRng, type Rng } from '../core/random.js';
import type { Database, Split } from './tables.js';
import { loadTensorflow } from '../tf/tensorflow.js';

type Tf = Awaited<ReturnType<typeof loadTensorflow>>;

/**
 * Random transforms applied to training batches, drawn per example. Ranges are ± around
 * identity; 0 or false turns one off.
 */
export interface AugmentOptions {
  /** Mirror left-right with probability ½ (default true). */
  flip?: boolean;
  /** Maximum rotation in degrees (default 10). */
  rotation?: number;
  /** Maximum zoom as a fraction: 0.1 samples a scale in [0.9, 1.1] (default 0.1). */
  zoom?: number;
  /** Maximum shift as a fraction of the side, on each axis (default 0.1). */
  shift?: number;
  /** Maximum brightness change as a fraction: 0.2 multiplies by [0.8, 1.2] (default 0.2). */
  brightness?: number;
}

export const DEFAULT_AUGMENT: Required<AugmentOptions> = {
  flip: true,
  rotation: 10,
  zoom: 0.1,
  shift: 0.1,
  brightness: 0.2,
};

/** What the loader reports as it goes; decode events count JPEGs actually decoded. */
export type DatasetLoadEvent =
  | { kind: 'decode'; imageId: number; decoded: number; total: number }
  | { kind: 'cache-complete'; key: string };

export interface LoadImageDatasetOptions {
  db: Kysely<Database>;
  blobs: BlobStore;
  split: Split;
  /**
   * Classes in one-hot order. Default: every label that has images in any split, sorted by
   * name, so train and val datasets built separately agree on the order.
   */
  labels?: readonly string[];
  spec: InputSpec;
  batchSize: number;
  /** Reshuffle every epoch from (seed, epoch); default true for train, false otherwise. */
  shuffle?: boolean;
  /** Train only: validation and test data are never augmented. */
  augment?: boolean | AugmentOptions;
  /** Default 'menagerie'. */
  seed?: number | string;
  /** Folder for the pixel cache (`<dataDir>/cache`); null decodes every epoch. */
  cacheDir: string | null;
  /** Cache entries are trimmed to this total, least recently used first (default 2 GB). */
  cacheMaxBytes?: number;
  /**
   * Images decoded at once. Default with sharp: 2 × cores, at most libuv's thread pool size;
   * with the 'tensorflow' decoder, every image of the batches fetched ahead.
   */
  concurrency?: number;
  /** At most this many images per label, the lowest ids first. */
  limitPerLabel?: number;
  /** Batches whose pixels are fetched while the caller holds the current one (default 2). */
  prefetch?: number;
  onProgress?: (event: DatasetLoadEvent) => void;
}

/** An ImageDataset read from the catalogue, with what it was built from. */
export interface LoadedImageDataset extends ImageDataset {
  readonly split: Split;
  /** Image ids in record order (id order); an epoch visits a permutation of them. */
  readonly imageIds: readonly number[];
  /** The pixel cache entry's key, or null without a cache. */
  readonly cacheKey: string | null;
  /** Images decoded so far by this dataset (cache misses). */
  readonly decoded: number;
}

/**
 * sharp decodes on libuv's threads, so more at once than it has threads only queue. The
 * decoder processes, though, go idle whenever their queue empties while this thread runs a
 * training step (45 ms a batch for the reference CNN: 100 decodes' worth), so they are
 * given every image the batches ahead need: epoch 1 of `bench epoch-e2e` took 9.5 s with 4
 * at once.
 */
function defaultConcurrency(spec: InputSpec, batchSize: number, prefetch: number): number {
  if (decoderOf(spec) === 'tensorflow') return batchSize * (prefetch + 1);
  return Math.min(os.availableParallelism() * 2, Number(process.env.UV_THREADPOOL_SIZE ?? 4));
}

/**
 * Opens the images of one split as an ImageDataset: rows from SQLite, bytes from the blob
 * store, pixels through decodeToPixels (the same path as serving), cached on disk after the
 * first pass so later epochs decode nothing. Batches are shuffled per epoch and, for
 * training, augmented on the native backend (flip, rotation, zoom, shift, brightness), all
 * from the seed: a fixed seed replays the same batches bit for bit.
 *
 * ```ts
 * import path from 'node:path';
 * import { openWorkspace } from './cli/workspace.js';
 * import { loadImageDataset } from './data/dataset-loader.js';
 *
 * const ws = await openWorkspace();
 * const train = await loadImageDataset({
 *   db: ws.database.db, blobs: ws.blobs, split: 'train', batchSize: 32, augment: true, seed: 7,
 *   spec: { size: 64, channels: 3, fit: 'fill', scale: 1 / 255, offset: 0 },
 *   cacheDir: path.join(ws.dataDir, 'cache'),
 * });
 * for await (const { xs, ys } of train.batches(0)) tf.dispose([xs, ys]);
 * await train.close();
 * ```
 */
export async function loadImageDataset(
  options: LoadImageDatasetOptions,
): Promise<LoadedImageDataset> {
  const { db, blobs, split, spec, batchSize } = options;
  // Thousands of small decodes: one libvips thread per image with images decoded in
  // parallel, and no operation cache (every buffer is new), decode ~10% more images/s on
  // 2 cores than sharp's defaults (1.35 against 1.5 ms an image for 512→64). Process-wide,
  // and harmless for the rest of a training process.
  sharp.cache(false);
  sharp.concurrency(1);
  if (!Number.isInteger(batchSize) || batchSize < 1) {
    throw new MenagerieError(
      'CONFIG_INVALID',
      `batchSize should be a positive integer, instead got ${batchSize}`,
    );
  }
  if (options.augment && split !== 'train') {
    throw new MenagerieError(
      'CONFIG_INVALID',
      `augment is for the train split only; ${split} data is never augmented`,
    );
  }
  const augment: Required<AugmentOptions> | null = options.augment
    ? { ...DEFAULT_AUGMENT, ...(options.augment === true ? {} : options.augment) }
    : null;
  const shuffle = options.shuffle ?? split === 'train';
  const seed = createRng(options.seed ?? 'menagerie');
  const tf = await loadTensorflow();

  const { labels, records, counts, classWeights } = await loadDatasetRecords(db, {
    split,
    ...(options.labels && { labels: options.labels }),
    ...(options.limitPerLabel !== undefined && { limitPerLabel: options.limitPerLabel }),
  });

  const cache: PixelCache | null = options.cacheDir
    ? await openPixelCache({
        cacheDir: options.cacheDir,
        images: records,
        spec,
        ...(options.cacheMaxBytes !== undefined ? { maxBytes: options.cacheMaxBytes } : {}),
      })
    : null;
  const prefetch = Math.max(0, options.prefetch ?? 2);
  const limit = limiter(options.concurrency ?? defaultConcurrency(spec, batchSize, prefetch));
  // Their start (about a second) is not an epoch's, and not at all once every image is cached.
  if (!cache || cache.filled < records.length) await prepareDecoder(spec);
  const inflight = new Set<Promise<unknown>>();
  let decoded = 0;
  let cacheReported = cache?.filled === records.length;

  const decode = async (index: number): Promise<Uint8Array> => {
    const record = records[index]!;
    const name = `image ${record.id} (${record.uri})`;
    const read = async () => {
      try {
        return await blobs.get(record.uri);
      } catch (error) {
        if (!isMenagerieError(error)) throw error;
        throw new MenagerieError(error.code, `${name}: ${error.message}`, { cause: error });
      }
    };
    // With the 'tensorflow' decoder a local file is read by the decoder process itself.
    const file = decoderOf(spec) === 'tensorflow' ? blobs.localPath?.(record.uri) : undefined;
    const pixels = file
      ? await decodeFileToPixels(file, spec, name, read)
      : await decodeToPixels(await read(), spec, name);
    decoded++;
    options.onProgress?.({
      kind: 'decode',
      imageId: record.id,
      decoded,
      total: records.length,
    });
    if (cache) {
      await cache.write(index, pixels);
      if (!cacheReported && cache.filled === records.length) {
        cacheReported = true;
        options.onProgress?.({ kind: 'cache-complete', key: cache.key });
      }
    }
    return pixels;
  };
  // An image still decoding for an abandoned epoch is awaited, not decoded twice.
  const decoding = new Map<number, Promise<Uint8Array>>();
  const pixelsOf = (index: number): Promise<Uint8Array> => {
    if (cache?.has(index)) return cache.read(index);
    let pending = decoding.get(index);
    if (!pending) {
      pending = limit(() => decode(index)).finally(() => decoding.delete(index));
      decoding.set(index, pending);
    }
    return pending;
  };

  const track = <T>(promise: Promise<T>): Promise<T> => {
    inflight.add(promise);
    // Marked handled here; the batch that needs it awaits it and sees the error.
    promise.then(
      () => inflight.delete(promise),
      () => inflight.delete(promise),
    );
    return promise;
  };

  async function* batches(epoch: number): AsyncGenerator<Batch> {
    const order = records.map((_, i) => i);
    if (shuffle) shuffleInPlace(order, seed.fork('order').fork(String(epoch)));
    const batchCount = Math.ceil(order.length / batchSize);
    const fetchBatch = (b: number) =>
      track(Promise.all(order.slice(b * batchSize, (b + 1) * batchSize).map(pixelsOf)));
    // Pixels are fetched ahead (sharp decodes on libuv threads) while the caller trains;
    // tensors are built only when asked for, since tfjs-node ops run on this thread anyway.
    const ahead: Promise<Uint8Array[]>[] = [];
    for (let b = 0; b < batchCount; b++) {
      while (ahead.length <= Math.min(b + prefetch, batchCount - 1)) {
        ahead.push(fetchBatch(ahead.length));
      }
      const pixels = await ahead[b]!;
      const indices = order.slice(b * batchSize, (b + 1) * batchSize);
      const ys = oneHot(
        tf,
        indices.map((i) => records[i]!.labelIndex),
        labels.length,
      );
      const xs = augment
        ? augmentBatch(tf, pixels, spec, augment, seed.fork('augment').fork(`${epoch}/${b}`))
        : pixelsToTensor(tf, pixels, spec);
      yield { xs, ys };
    }
  }

  return {
    split,
    labels,
    size: records.length,
    batchSize,
    spec,
    counts,
    classWeights,
    imageIds: records.map((r) => r.id),
    cacheKey: cache?.key ?? null,
    get decoded() {
      return decoded;
    },
    batches: (epoch) => batches(epoch),
    async close() {
      await Promise.allSettled([...inflight]);
      await cache?.close();
    },
  };
}

/**
 * Augments a batch: per example an affine map (flip, rotation, zoom, shift) sampled
 * bilinearly, edges extended like Keras's 'nearest' fill, then brightness, clipping to
 * 0–255 and the spec's scaling, fused in one pass into the batch's one tensor. tfjs-node
 * has no Transform kernel; a native gather-based sampler measured 24 ms a batch of 32×64²,
 * this loop about 4 ms, so the pixel work is done here and nothing is left to tidy.
 */
export function augmentBatch(
  tf: Pick<Tf, 'tensor4d'>,
  pixels: readonly Uint8Array[],
  spec: InputSpec,
  options: Required<AugmentOptions>,
  rng: Rng,
): Tensor4D {
  const n = pixels.length;
  const s = spec.size;
  const last = s - 1;
  const out = new Float32Array(n * s * s * 3);
  const c = s / 2;
  const { scale, offset } = spec;
  for (let e = 0; e < n; e++) {
    const src = pixels[e]!;
    // Six draws per example whatever the options, so turning one off leaves the others as they were.
    const flip = rng.next() < 0.5 && options.flip ? -1 : 1;
    const angle = (rng.float(-1, 1) * options.rotation * Math.PI) / 180;
    const zoom = 1 + rng.float(-1, 1) * options.zoom;
    const tx = rng.float(-1, 1) * options.shift * s;
    const ty = rng.float(-1, 1) * options.shift * s;
    const gain = 1 + rng.float(-1, 1) * options.brightness;
    // Output pixel centre → source point: rotate and scale about the centre, then shift.
    const cos = Math.cos(angle) * zoom;
    const sin = Math.sin(angle) * zoom;
    let o = e * s * s * 3;
    for (let y = 0; y < s; y++) {
      const v = y + 0.5 - c;
      for (let x = 0; x < s; x++) {
        const u = (x + 0.5 - c) * flip;
        const sx = Math.min(Math.max(cos * u - sin * v + c + tx - 0.5, 0), last);
        const sy = Math.min(Math.max(sin * u + cos * v + c + ty - 0.5, 0), last);
        const x0 = Math.min(Math.floor(sx), last - 1);
        const y0 = Math.min(Math.floor(sy), last - 1);
        const fx = sx - x0;
        const fy = sy - y0;
        const w00 = (1 - fx) * (1 - fy) * gain;
        const w01 = fx * (1 - fy) * gain;
        const w10 = (1 - fx) * fy * gain;
        const w11 = fx * fy * gain;
        const p00 = (y0 * s + x0) * 3;
        const p10 = p00 + s * 3;
        for (let ch = 0; ch < 3; ch++) {
          const value =
            src[p00 + ch]! * w00 +
            src[p00 + 3 + ch]! * w01 +
            src[p10 + ch]! * w10 +
            src[p10 + 3 + ch]! * w11;
          out[o++] = Math.min(Math.max(value, 0), 255) * scale + offset;
        }
      }
    }
  }
  return tf.tensor4d(out, [n, s, s, 3], 'float32');
}
