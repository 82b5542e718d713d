import type { Kysely } from 'kysely';
import { isMenagerieError, MenagerieError } from '../core/errors.js';
import { createRng } from '../core/random.js';
import type { BlobStore } from '../data/blob-store.js';
import type { Batch, ImageDataset } from '../data/dataset.js';
import {
  limiter,
  loadDatasetRecords,
  oneHot,
  shuffleInPlace,
  type DatasetRecord,
} from '../data/dataset-records.js';
import { openFeatureCache, type FeatureCache } from '../data/feature-cache.js';
import { decodeToPixels } from '../data/preprocess.js';
import type { Database, Split } from '../data/tables.js';
import { loadTensorflow } from '../tf/tensorflow.js';
import type { Backbone } from './backbone-loader.js';
import { backboneFeatures, FEATURE_BATCH, VIEWS_VERSION } from './backbone-features.js';

/** Progress of the first pass, which computes every missing feature vector. */
export interface FeatureProgress {
  kind: 'features';
  /** Vectors computed so far, of `missing`. */
  done: number;
  missing: number;
  /** Vectors in the data set (images × views). */
  total: number;
}

export interface LoadFeatureDatasetOptions {
  db: Kysely<Database>;
  blobs: BlobStore;
  split: Split;
  /** Class names in one-hot order (default: every label with images, by name). */
  labels?: readonly string[];
  backbone: Backbone;
  /** Vectors per image: view 0 (the image) plus `views - 1` augmented copies. Train only. */
  views: number;
  batchSize: number;
  /** Reshuffle every epoch from (seed, epoch); default true for train. */
  shuffle?: boolean;
  seed?: number | string;
  /** Folder for the feature cache (`<dataDir>/cache`); null keeps features in memory only. */
  cacheDir: string | null;
  limitPerLabel?: number;
  /** Images decoded at once (default 4). */
  concurrency?: number;
  signal?: AbortSignal;
  onProgress?: (progress: FeatureProgress) => void;
}

/** An ImageDataset of backbone features: batches are `xs: [n, featureSize]`. */
export interface FeatureDataset extends ImageDataset {
  readonly split: Split;
  readonly featureSize: number;
  readonly views: number;
  /** Vectors the first pass computed (cache misses). */
  readonly computed: number;
}

/**
 * One split as backbone features instead of pixels: a head trains on it in well under a
 * second an epoch once its features exist. Opening it computes every missing vector (each
 * image × view, through `backboneFeatures`, the same path evaluation and serving take) and
 * keeps them in the feature cache, keyed by image content, backbone weights and
 * preprocessing, so later runs, other splits and other models reuse them. Each epoch a
 * training image contributes one of its views, drawn from (seed, epoch).
 *
 * ```ts
 * const backbone = await backbones.load('mobilenet_v2_140');
 * const train = await loadFeatureDataset({
 *   db, blobs, split: 'train', backbone, views: 4, batchSize: 32, cacheDir: '.menagerie/cache',
 * });
 * for await (const { xs, ys } of train.batches(0)) tf.dispose([xs, ys]); // xs: [32, 1792]
 * ```
 */
export async function loadFeatureDataset(
  options: LoadFeatureDatasetOptions,
): Promise<FeatureDataset> {
  const { backbone, split, batchSize } = options;
  const views = options.views;
  if (!Number.isInteger(views) || views < 1 || views > 64) {
    throw new MenagerieError(
      'CONFIG_INVALID',
      `views should be an integer in [1, 64], got ${views}`,
    );
  }
  if (views > 1 && split !== 'train') {
    throw new MenagerieError(
      'CONFIG_INVALID',
      `augmented views are for the train split only; ${split} data is never augmented`,
    );
  }
  if (!Number.isInteger(batchSize) || batchSize < 1) {
    throw new MenagerieError(
      'CONFIG_INVALID',
      `batchSize should be a positive integer, got ${batchSize}`,
    );
  }
  const tf = await loadTensorflow();
  const { labels, records, counts, classWeights } = await loadDatasetRecords(options.db, {
    split,
    ...(options.labels && { labels: options.labels }),
    ...(options.limitPerLabel !== undefined && { limitPerLabel: options.limitPerLabel }),
  });
  const spec = backbone.plugin.inputSpec;
  const featureSize = backbone.loaded.featureSize;
  const cache =
    options.cacheDir === null
      ? memoryCache(featureSize)
      : await openBackboneFeatureCache(options.cacheDir, backbone);
  const computed = await computeFeatures({
    blobs: options.blobs,
    backbone,
    records,
    views,
    cache,
    ...(options.concurrency !== undefined && { concurrency: options.concurrency }),
    ...(options.signal && { signal: options.signal }),
    ...(options.onProgress && { onProgress: options.onProgress }),
  });
  // Every vector of the data set, in record order, view by view.
  const vectors = records.map((r) =>
    Array.from({ length: views }, (_, v) => cache.get(r.sha256, v)!),
  );
  await cache.close();

  const seed = createRng(options.seed ?? 'menagerie');
  const shuffle = options.shuffle ?? split === 'train';
  async function* batches(epoch: number): AsyncGenerator<Batch> {
    const order = records.map((_, i) => i);
    if (shuffle) shuffleInPlace(order, seed.fork('order').fork(String(epoch)));
    const pickView = seed.fork('view').fork(String(epoch));
    for (let start = 0; start < order.length; start += batchSize) {
      const indices = order.slice(start, start + batchSize);
      const values = new Float32Array(indices.length * featureSize);
      indices.forEach((i, row) => {
        const view = views > 1 ? pickView.int(0, views - 1) : 0;
        values.set(vectors[i]![view]!, row * featureSize);
      });
      yield {
        xs: tf.tensor2d(values, [indices.length, featureSize]),
        ys: oneHot(
          tf,
          indices.map((i) => records[i]!.labelIndex),
          labels.length,
        ),
      };
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
    featureSize,
    views,
    computed,
    batches,
    close: async () => {},
  };
}

/** The feature cache of a loaded backbone, under `<cacheDir>/features/`. */
export function openBackboneFeatureCache(
  cacheDir: string,
  backbone: Backbone,
): Promise<FeatureCache> {
  return openFeatureCache({
    cacheDir,
    featureSize: backbone.loaded.featureSize,
    identity: {
      backbone: backbone.plugin.name,
      weightsSha256: backbone.loaded.weightsSha256,
      spec: backbone.plugin.inputSpec,
      viewsVersion: VIEWS_VERSION,
    },
  });
}

/** What `computeFeatures` needs: the images, the backbone, and the cache to fill. */
export interface ComputeFeaturesOptions {
  blobs: BlobStore;
  backbone: Backbone;
  records: readonly Pick<DatasetRecord, 'id' | 'uri' | 'sha256'>[];
  /** Views 0 to `views - 1` of every image. */
  views: number;
  cache: FeatureCache;
  /** Images decoded at once (default 4). */
  concurrency?: number;
  signal?: AbortSignal;
  onProgress?: (progress: FeatureProgress) => void;
  /** An image that does not decode: skipped and reported here, instead of failing. */
  onUnreadable?: (record: Pick<DatasetRecord, 'id' | 'uri'>, error: MenagerieError) => void;
}

/**
 * Computes the vectors the cache lacks, returning how many: images are decoded on libuv's
 * threads while the backbone runs on the previous batch, and each batch is appended to the
 * cache as it ends, so a killed run keeps what it computed.
 */
export async function computeFeatures(options: ComputeFeaturesOptions): Promise<number> {
  const { records, views, cache } = options;
  const tf = await loadTensorflow();
  const missing = records.flatMap((record) =>
    Array.from({ length: views }, (_, view) => ({ record, view })).filter(
      ({ view }) => !cache.has(record.sha256, view),
    ),
  );
  const total = records.length * views;
  options.onProgress?.({ kind: 'features', done: 0, missing: missing.length, total });
  if (missing.length === 0) return 0;
  const spec = options.backbone.plugin.inputSpec;
  const limit = limiter(options.concurrency ?? 4);
  // An image with several missing views is decoded once.
  const decoded = new Map<string, Promise<Uint8Array | null>>();
  const pixelsOf = (record: ComputeFeaturesOptions['records'][number]) => {
    let pending = decoded.get(record.sha256);
    if (!pending) {
      pending = limit(async () => {
        const name = `image ${record.id} (${record.uri})`;
        try {
          return await decodeToPixels(await options.blobs.get(record.uri), spec, name);
        } catch (error) {
          if (!isMenagerieError(error)) throw error;
          const named = new MenagerieError(error.code, `${name}: ${error.message}`, {
            cause: error,
          });
          if (!options.onUnreadable) throw named;
          options.onUnreadable(record, named);
          return null;
        }
      });
      decoded.set(record.sha256, pending);
    }
    return pending;
  };
  const chunks: (typeof missing)[] = [];
  for (let i = 0; i < missing.length; i += FEATURE_BATCH) {
    chunks.push(missing.slice(i, i + FEATURE_BATCH));
  }
  const fetch = (chunk: (typeof missing)[number][]) =>
    Promise.all(chunk.map(async (m) => ({ ...m, pixels: await pixelsOf(m.record) })));
  let next = fetch(chunks[0]!);
  let done = 0;
  for (let c = 0; c < chunks.length; c++) {
    const ready = await next;
    if (c + 1 < chunks.length) next = fetch(chunks[c + 1]!);
    if (options.signal?.aborted) {
      await next.catch(() => {});
      options.signal.throwIfAborted(); // the run ends KILLED, keeping what is cached
    }
    const usable = ready.filter(
      (m): m is (typeof ready)[number] & { pixels: Uint8Array } => m.pixels !== null,
    );
    const features = backboneFeatures(
      tf,
      options.backbone.loaded,
      spec,
      usable.map((m) => ({ sha256: m.record.sha256, pixels: m.pixels, view: m.view })),
    );
    await cache.put(
      usable.map((m, i) => ({ sha256: m.record.sha256, view: m.view, features: features[i]! })),
    );
    // Pixels of an image whose views are all done are not needed again.
    for (const m of ready) if (m.view === views - 1) decoded.delete(m.record.sha256);
    done += ready.length;
    options.onProgress?.({ kind: 'features', done, missing: missing.length, total });
  }
  return missing.length;
}

/** A FeatureCache that forgets when the process ends (`cacheDir: null`). */
function memoryCache(featureSize: number): FeatureCache {
  const held = new Map<string, Float32Array>();
  return {
    key: 'memory',
    featureSize,
    get size() {
      return held.size;
    },
    get: (sha256, view) => held.get(`${view}:${sha256}`),
    has: (sha256, view) => held.has(`${view}:${sha256}`),
    put: async (records) => {
      for (const r of records) held.set(`${r.view}:${r.sha256}`, r.features);
    },
    close: async () => {},
  };
}
