import path from 'node:path';
import type { Kysely } from 'kysely';
import type { BlobStore } from '../data/blob-store.js';
import type { ImageDataset } from '../data/dataset.js';
import { loadImageDataset } from '../data/dataset-loader.js';
import type { Database } from '../data/tables.js';
import type { HyperParameters } from '../plugin-api/hyperparameters.js';
import type { LoadedBackbone, ModelPlugin } from '../plugin-api/plugin.js';
import type { Backbone, BackboneLoader } from '../training/backbone-loader.js';
import { loadFeatureDataset } from '../training/feature-dataset.js';
import { loadTensorflow } from '../tf/tensorflow.js';

/** The data sets a training run reads, chosen by the model plugin. */
export interface TrainingData {
  train: ImageDataset;
  val: ImageDataset;
  /** Set for a plugin with a backbone: `train` and `val` hold its features. */
  backbone?: Backbone;
  /** Pixel data sets and a private trainable backbone copy, when the plugin fine-tunes. */
  fineTune?: { train: ImageDataset; val: ImageDataset; backbone: LoadedBackbone };
  close(): Promise<void>;
}

export interface TrainingDataOptions {
  db: Kysely<Database>;
  blobs: BlobStore;
  dataDir: string;
  backbones: BackboneLoader;
  plugin: ModelPlugin;
  /** Values already run through `plugin.space`. */
  hp: HyperParameters;
  batchSize: number;
  seed: number;
  augment: boolean;
  limitPerLabel?: number;
  signal?: AbortSignal;
  /** Progress of computing backbone features (the first run over a data set). */
  onFeatures?: (done: number, total: number) => void;
}

/**
 * Opens the train and val data a model plugin needs: pixels at its input spec, or, for a
 * plugin with a backbone, the backbone's features (computed once, cached), plus pixels for
 * fine-tuning when it asks for that.
 *
 * ```ts
 * const data = await openTrainingData({ ...context, plugin, hp, batchSize: 32, seed: 42, augment: true });
 * await trainModel({ plugin, hp, ...data, epochs: 10, seed: 42, outputDir });
 * await data.close();
 * ```
 */
export async function openTrainingData(options: TrainingDataOptions): Promise<TrainingData> {
  const { plugin, hp } = options;
  const cacheDir = path.join(options.dataDir, 'cache');
  const pixels = async (augment: boolean) => {
    const common = {
      db: options.db,
      blobs: options.blobs,
      spec: plugin.inputSpec(hp),
      batchSize: options.batchSize,
      seed: options.seed,
      cacheDir,
      ...(options.limitPerLabel !== undefined && { limitPerLabel: options.limitPerLabel }),
    };
    const train = await loadImageDataset({ ...common, split: 'train', augment });
    const val = await loadImageDataset({ ...common, split: 'val', labels: train.labels });
    return { train, val };
  };

  const use = plugin.backbone?.(hp) ?? null;
  if (!use) {
    const { train, val } = await pixels(options.augment);
    return {
      train,
      val,
      close: async () => void (await Promise.all([train.close(), val.close()])),
    };
  }

  const backbone = await options.backbones.load(use.backbone, options.signal);
  // At most four reports a second, and the last one always.
  let reportedAt = 0;
  const report = (done: number, total: number) => {
    const now = performance.now();
    if (done < total && now - reportedAt < 250) return;
    reportedAt = now;
    options.onFeatures?.(done, total);
  };
  const features = {
    db: options.db,
    blobs: options.blobs,
    backbone,
    batchSize: options.batchSize,
    seed: options.seed,
    cacheDir,
    ...(options.limitPerLabel !== undefined && { limitPerLabel: options.limitPerLabel }),
    ...(options.signal && { signal: options.signal }),
  };
  // One progress count over both splits: train's views first, then val's images.
  let trainTotal = 0;
  const train = await loadFeatureDataset({
    ...features,
    split: 'train',
    views: options.augment ? use.views : 1,
    onProgress: (p) => {
      trainTotal = p.missing;
      report(p.done, p.missing);
    },
  });
  const val = await loadFeatureDataset({
    ...features,
    split: 'val',
    labels: train.labels,
    views: 1,
    onProgress: (p) => report(trainTotal + p.done, trainTotal + p.missing),
  });
  let fineTune: TrainingData['fineTune'];
  if (use.fineTune && backbone.plugin.trainable) {
    const tf = await loadTensorflow();
    // Fine-tuning changes the weights: it trains a copy, never the shared backbone.
    const copy = await backbone.plugin.load({
      tf,
      cacheDir,
      ...(options.signal && { signal: options.signal }),
    });
    fineTune = { ...(await pixels(options.augment)), backbone: copy };
  }
  return {
    train,
    val,
    backbone,
    ...(fineTune && { fineTune }),
    async close() {
      await Promise.all([
        train.close(),
        val.close(),
        fineTune?.train.close(),
        fineTune?.val.close(),
      ]);
    },
  };
}
