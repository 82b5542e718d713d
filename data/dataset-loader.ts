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
import {
  augmentPixels,
  DEFAULT_AUGMENT,
  drawAugmentations,
  type AugmentOptions,
} from './augment.js';
import { augmentOffThread } from './augment-worker.js';

export { DEFAULT_AUGMENT, type AugmentOptions } from './augment.js';

type Tf = Awaited<ReturnType<typeof loadTensorflow>>;

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
 * store, pixels through decodeToPixels (the same path as serving; a decoder process reads
 * a local file itself), cached on disk after the first pass so later epochs decode nothing.
 * Batches are shuffled per epoch and, for training, augmented on a worker thread (flip,
 * rotation, zoom, shift, brightness), all from the seed: a fixed seed replays the same
 * batches bit for bit.
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
    // A local file goes by its path: the 'tensorflow' decoder's process reads it itself.
    const file = blobs.localPath?.(record.uri);
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
    // A batch's input: for training, augmented on the augmentation thread as soon as its
    // pixels are in; else the pixels, scaled on this thread when asked for.
    const prepare = async (b: number): Promise<Float32Array | Uint8Array[]> => {
      const pixels = await Promise.all(
        order.slice(b * batchSize, (b + 1) * batchSize).map(pixelsOf),
      );
      if (!augment) return pixels;
      const draws = drawAugmentations(seed.fork('augment').fork(`${epoch}/${b}`), pixels.length);
      return augmentOffThread(pixels, spec, augment, draws);
    };
    const fetchBatch = (b: number) => track(prepare(b));
    // Batches are prepared ahead (decodes in the decoder processes or on libuv threads,
    // augmentation on its thread) while the caller trains; tensors are built only when
    // asked for, since tfjs-node ops run on this thread anyway.
    const ahead: Promise<Float32Array | Uint8Array[]>[] = [];
    for (let b = 0; b < batchCount; b++) {
      while (ahead.length <= Math.min(b + prefetch, batchCount - 1)) {
        ahead.push(fetchBatch(ahead.length));
      }
      const input = await ahead[b]!;
      const indices = order.slice(b * batchSize, (b + 1) * batchSize);
      const ys = oneHot(
        tf,
        indices.map((i) => records[i]!.labelIndex),
        labels.length,
      );
      const xs =
        input instanceof Float32Array
          ? tf.tensor4d(input, [indices.length, spec.size, spec.size, 3])
          : pixelsToTensor(tf, input, spec);
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
 * Augments a batch (see `augmentPixels`) into one tensor, with its draws from `rng`.
 */
export function augmentBatch(
  tf: Pick<Tf, 'tensor4d'>,
  pixels: readonly Uint8Array[],
  spec: InputSpec,
  options: Required<AugmentOptions>,
  rng: Rng,
): Tensor4D {
  const n = pixels.length;
  const draws = drawAugmentations(rng, n);
  return tf.tensor4d(augmentPixels(pixels, spec, options, draws), [n, spec.size, spec.size, 3]);
}
