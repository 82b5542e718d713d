import type * as tf from '@tensorflow/tfjs-node';
import type { ArtifactStore } from '../data/artifact-store.js';
import type { BlobStore } from '../data/blob-store.js';
import type { InputSpec } from '../data/input-spec.js';
import type { loadTensorflow } from '../tf/tensorflow.js';
import type { HpSpec, HpValue } from './hp-spec.js';
import type { HyperParameters } from './hyperparameters.js';

export type { HpCondition, HpSpec, HpValue } from './hp-spec.js';
export { HyperParameters } from './hyperparameters.js';
export type { InputSpec } from '../data/input-spec.js';

/**
 * The plugin contract: every plugin kind's hooks, the tuner's Oracle, and `definePlugin`.
 * Training, tuning, the registry, serving and third-party plugins all code against this
 * module; built-in plugins register through it exactly like anyone else's.
 *
 * A plugin is a plain object: a `name`, a `kind`, and the hooks of its kind. Each hook's
 * comment says when Menagerie calls it and what it does with the return value.
 */

/** The plugin contract version this Menagerie implements; a plugin may pin the one it needs. */
export const PLUGIN_API_VERSION = 1;

interface PluginBase {
  /** Unique per kind. Built-ins are prefixed `menagerie:`. */
  name: string;
  /** The plugin's own version, recorded with what it builds. */
  version?: string;
  /** The PLUGIN_API_VERSION the plugin was written for; registration refuses another. */
  apiVersion?: number;
  description?: string;
}

/** Where a storage plugin may keep state. */
export interface StorageContext {
  /** The Menagerie data directory (`--data-dir`): local state and caches. */
  dataDir: string;
  /**
   * The store URL the workspace was opened with (`--store` / `MENAGERIE_STORE_URL`), e.g.
   * `s3://bucket/prefix?endpoint=http://…`; undefined for the default local store.
   */
  url?: string;
}

/**
 * A storage plugin makes the blob store image bytes go to.
 *
 * ```ts
 * import { definePlugin } from 'menagerie/plugin-api/plugin.js';
 * export default definePlugin({
 *   name: 'my-bucket',
 *   kind: 'storage',
 *   createStore: ({ dataDir }) => createMyBucketStore(dataDir),
 * });
 * ```
 */
export interface StoragePlugin extends PluginBase {
  kind: 'storage';
  /** Once per open data directory: returns the store every image byte goes to. */
  createStore(context: StorageContext): BlobStore;
  /**
   * Once per open data directory, beside `createStore`: the store that run and model
   * artifacts (folders of files) go to, so any replica can load any model version.
   * Without it artifacts stay in `<data-dir>/artifacts` as `file://` folders.
   */
  createArtifactStore?(context: StorageContext): ArtifactStore;
}

/** What a model plugin's `build` gets besides its hyperparameters. */
export interface ModelBuildContext {
  /** Class names in output order. */
  labels: readonly string[];
  /** The input spec `inputSpec(hp)` returned for these hyperparameters. */
  input: InputSpec;
  /** The TensorFlow module (native backend), so plugins need not import their own copy. */
  tf: Awaited<ReturnType<typeof loadTensorflow>>;
  /**
   * Seed for weight initializers (`glorotUniform({ seed: seed + i })`), so a fixed training
   * seed gives the same initial weights; undefined means unseeded.
   */
  seed?: number;
  /** Aborts when the run is cancelled: an async `build` (fetching weights) should stop. */
  signal?: AbortSignal;
  /**
   * Set when `backbone(hp)` named one: the model `build` returns is the head alone, and its
   * input is the backbone's feature vector, `[n, features.size]`.
   */
  features?: { size: number };
}

/**
 * A model plugin: a hyperparameter space, a builder and the preprocessing it needs.
 *
 * ```ts
 * import { definePlugin } from 'menagerie/plugin-api/plugin.js';
 * export default definePlugin({
 *   name: 'tiny',
 *   kind: 'model',
 *   space: (hp) => { hp.int('units', 8, 64, { step: 8, default: 16 }); },
 *   inputSpec: () => ({ size: 32, channels: 3, fit: 'fill', scale: 1 / 255, offset: 0 }),
 *   build: (hp, { tf, labels, input }) => {
 *     const model = tf.sequential();
 *     model.add(tf.layers.flatten({ inputShape: [input.size, input.size, 3] }));
 *     model.add(tf.layers.dense({ units: hp.get('units') as number, activation: 'relu', name: 'embedding' }));
 *     model.add(tf.layers.dense({ units: labels.length, activation: 'softmax' }));
 *     return model;
 *   },
 *   embeddingLayer: 'embedding',
 * });
 * ```
 */
export interface ModelPlugin extends PluginBase {
  kind: 'model';
  /**
   * Declares the hyperparameters (KerasTuner's `hp.Int`, `hp.Choice`…). Called on an
   * empty HyperParameters to discover the space (tuners, the dashboard's form), and before
   * `build` so unset values take their defaults. Its return is ignored.
   */
  space(hp: HyperParameters): void;
  /**
   * After `space`, before any image is read: the preprocessing these hyperparameters need
   * (input size may be a hyperparameter). Training, evaluation and serving all feed the
   * model through it, and the model version records it. Its `decoder` may name
   * `'tensorflow'` (what `menagerie:cnn` does) for about a third of sharp's decode CPU per
   * JPEG; left out, it is `'sharp'`.
   */
  inputSpec(hp: HyperParameters): InputSpec;
  /**
   * Once per training run (and per trial), after `space`: returns an uncompiled model
   * ending in one softmax over `labels`, with a layer named `embeddingLayer`. The trainer
   * trains it with the optimizer and learning rate from `hp` (`optimizer`,
   * `learning_rate`); a model of another shape is refused with PLUGIN_INVALID. Layer
   * regularizers and constraints are honoured as in Keras. Training swaps a few of tfjs's
   * kernels for native ones process-wide, equal up to float rounding (tf/fast-kernels.ts).
   */
  build(hp: HyperParameters, context: ModelBuildContext): tf.LayersModel | Promise<tf.LayersModel>;
  /** The layer whose output is the image embedding (usually the penultimate). */
  embeddingLayer: string;
  /**
   * After `space`: the pretrained backbone these hyperparameters put under the model, or
   * null for a model that reads pixels itself. With a backbone, `build` builds only the head
   * (its input is the feature vector); the trainer computes each image's features once per
   * augmented view and caches them, and training, evaluation and serving all feed the head
   * through the same backbone and preprocessing. `inputSpec(hp)` must be the backbone's.
   */
  backbone?(hp: HyperParameters): BackboneUse | null;
  /**
   * When a saved version is loaded (registering, serving, warm starts): returns the model
   * built from the artifact folder `dir` (custom layers, extra files). Without it the tfjs
   * artifact in `dir` (model.json + weights) is loaded as is.
   */
  load?(
    dir: string,
    context: {
      tf: ModelBuildContext['tf'];
      manifest: ModelArtifactManifest;
    },
  ): Promise<tf.LayersModel>;
  /**
   * Before each epoch (0-based, counting from the initial epoch), e.g. to unfreeze layers
   * for fine-tuning. Return (or resolve to) true when trainability changed: the trainer
   * then starts a fresh optimizer over the new set of trainable weights. A hook that waits
   * should also stop waiting when `signal` aborts (the run is being cancelled).
   */
  onEpochStart?(
    model: tf.LayersModel,
    epoch: number,
    hp: HyperParameters,
    context: { signal: AbortSignal },
  ): boolean | Promise<boolean>;
}

/** How a model plugin uses a backbone (see `ModelPlugin.backbone`). */
export interface BackboneUse {
  /** A registered backbone plugin's name (`mobilenet_v2_140`), or a backbone plugin object. */
  backbone: string | BackbonePlugin;
  /** Feature vectors per training image: the image itself plus `views - 1` augmented copies. */
  views: number;
  /**
   * Fine-tuning, for trainable backbones: from epoch `afterEpoch` (0-based) the top `blocks`
   * blocks of the backbone train with the head, on pixels, at the learning rate times
   * `learningRateFactor`. The saved model then holds the whole network.
   */
  fineTune?: { blocks: number; afterEpoch: number; learningRateFactor: number };
}

/** Where a backbone's weights come from; every model version built on it records this. */
export interface BackboneSource {
  /** `package`: files of an installed npm package (offline); `url`: fetched; `path`: a folder. */
  kind: 'package' | 'url' | 'path';
  /** The npm package and its installed version (`package` sources). */
  package?: string;
  packageVersion?: string;
  /** The model inside the package, the URL, or the path. */
  location: string;
}

/** What a backbone's `load` gets. */
export interface BackboneLoadContext {
  tf: ModelBuildContext['tf'];
  /** A folder the backbone may keep derived files in (a converted model, say). */
  cacheDir: string;
  signal?: AbortSignal;
}

/** A backbone's weights, loaded: a function from images to features. */
export interface LoadedBackbone {
  /** sha256 of the weight bytes: other weights are another backbone, never mixed up. */
  readonly weightsSha256: string;
  /** Where the weights were read from, with the installed package's version. */
  readonly source: BackboneSource;
  /** Length of a feature vector. */
  readonly featureSize: number;
  /**
   * Features of a batch `[n, size, size, 3]` scaled by the backbone's input spec:
   * `[n, featureSize]`. The caller disposes both. An image's features do not depend on the
   * other images of its batch.
   */
  features(xs: tf.Tensor4D): tf.Tensor2D;
  /**
   * For trainable backbones: a layers model from pixels to features sharing the weights, and
   * its blocks, bottom to top, each a list of layer names (fine-tuning unfreezes the top ones).
   */
  readonly trainable?: { model: tf.LayersModel; blocks: readonly (readonly string[])[] };
  dispose(): void;
}

/**
 * A backbone plugin: a pretrained feature extractor. The built-ins are MobileNetV2 models
 * with ImageNet weights shipped inside an npm package, so nothing is downloaded.
 *
 * ```ts
 * import { definePlugin } from 'menagerie/plugin-api/plugin.js';
 * export default definePlugin({
 *   name: 'my-backbone', kind: 'backbone', featureSize: 512, trainable: false,
 *   inputSpec: { size: 160, channels: 3, fit: 'fill', scale: 1 / 255, offset: 0 },
 *   source: { kind: 'path', location: '/models/my-backbone' },
 *   load: async ({ tf }) => wrapGraphModel(await tf.loadGraphModel('file:///models/my-backbone/model.json')),
 * });
 * ```
 */
export interface BackbonePlugin extends PluginBase {
  kind: 'backbone';
  /** The preprocessing the weights were trained with. */
  inputSpec: InputSpec;
  /** Length of a feature vector, when known before loading (a URL's model tells at load). */
  featureSize?: number;
  /** Whether `load` gives `trainable` (a layers model fine-tuning can unfreeze). */
  trainable: boolean;
  source: BackboneSource;
  /**
   * When a process first needs this backbone's features (training, evaluation, serving,
   * similar images): loads the weights. Only a `url` source may touch the network.
   */
  load(context: BackboneLoadContext): Promise<LoadedBackbone>;
}

/** A finished or failed trial as a tuner sees it. */
export interface TrialResult {
  trialId: string;
  values: Record<string, unknown>;
  /** The objective's final value; undefined when the trial failed. */
  score?: number;
  status: 'COMPLETED' | 'FAILED';
  /** Epochs the trial trained for (Hyperband budgets). */
  epochs?: number;
}

/**
 * A tuner plugin proposes trials and learns from their results. Its whole state is
 * JSON, saved after every trial, so a killed tuning run resumes where it stopped.
 */
export interface TunerPlugin extends PluginBase {
  kind: 'tuner';
  /**
   * Once per tuning run, and again when a stopped run resumes (then `restore` gets the
   * saved state): returns the oracle that proposes the trials.
   */
  createOracle(options: OracleOptions): Oracle;
}

/** What a tuner's `createOracle` gets. */
export interface OracleOptions {
  /** The search space, usually a model plugin's `space(hp)` run on an empty HyperParameters. */
  space: readonly HpSpec[];
  objective: { name: string; direction: 'min' | 'max' };
  /** Trials to propose at most (failed ones count). */
  maxTrials?: number;
  /** Same seed, same results: same proposals. */
  seed?: number;
  /** Tuner-specific options (Hyperband's maxEpochs, factor, iterations…). */
  [option: string]: unknown;
}

/** What to run next. */
export interface TrialProposal {
  trialId: string;
  values: Record<string, HpValue>;
  /** Epochs to train this trial for (Hyperband); the caller's default when absent. */
  epochs?: number;
  /** Start from this earlier trial's checkpoint (Hyperband promotions). */
  warmStartFrom?: string;
  /** Epoch to start counting from when warm-starting. */
  initialEpoch?: number;
}

/**
 * The search strategy behind a tuner plugin. The caller alternates `next()` and
 * `report()`; `state()` after each report is enough to continue after a crash.
 *
 * ```ts
 * const oracle = tuner.createOracle({ space, objective: { name: 'val_loss', direction: 'min' } });
 * for (let p = oracle.next(); p; p = oracle.next()) {
 *   const score = await train(p.values, p.epochs);
 *   oracle.report({ trialId: p.trialId, values: p.values, score, status: 'COMPLETED' });
 * }
 * ```
 */
export interface Oracle {
  /** The objective's direction, so callers can rank results without the options. */
  readonly direction?: 'min' | 'max';
  /** The next trial, or null when the search is done. */
  next(): TrialProposal | null;
  report(result: TrialResult): void;
  /** JSON-safe state; `restore` of it continues the search exactly. */
  state(): unknown;
  restore(state: unknown): void;
}

/** `menagerie.json`: everything needed to serve the model exactly as it was trained. */
export interface ModelArtifactManifest {
  format: 1;
  /** The model plugin that built it, e.g. `menagerie:cnn`. */
  plugin: string;
  pluginVersion: string | null;
  /** Class names in output order. */
  labels: string[];
  inputSpec: InputSpec;
  hyperparameters: Record<string, HpValue>;
  /** Layer whose output is the embedding (similar images). */
  embeddingLayer: string;
  /** Epoch (0-based) whose weights these are. */
  epoch: number | null;
  tfjsVersion: string;
  tensorflowVersion: string;
  createdAt: string;
  metrics: Record<string, number>;
  /**
   * The pretrained backbone under a transfer model. Unless `included` (fine-tuned: the
   * artifact holds the whole network), the artifact is the head alone and is fed the
   * backbone's features; serving loads the backbone and refuses other weights.
   */
  backbone?: ModelBackbone;
}

/** What a model version records of its backbone. */
export interface ModelBackbone {
  name: string;
  source: BackboneSource;
  weightsSha256: string;
  featureSize: number;
  included: boolean;
}

/** Every plugin kind. */
export type Plugin = StoragePlugin | ModelPlugin | TunerPlugin | BackbonePlugin;
export type PluginKind = Plugin['kind'];

/** Hooks each kind must have, checked when a plugin registers. */
export const REQUIRED_HOOKS: Record<PluginKind, readonly string[]> = {
  storage: ['createStore'],
  model: ['space', 'inputSpec', 'build'],
  tuner: ['createOracle'],
  backbone: ['load'],
};

/** Identity at run time; gives a plugin literal its type, the way Vite's defineConfig does. */
export function definePlugin<P extends Plugin>(plugin: P): P {
  return plugin;
}
