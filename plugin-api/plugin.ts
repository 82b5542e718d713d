import type * as tf from '@tensorflow/tfjs-node';
import type { BlobStore } from '../data/blob-store.js';
import type { InputSpec } from '../data/input-spec.js';
import type { loadTensorflow } from '../tf/tensorflow.js';
import type { HyperParameters } from './hyperparameters.js';

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
  /** The Menagerie data directory (`--data-dir`). */
  dataDir: string;
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
  /** Called once per open data directory. */
  createStore(context: StorageContext): BlobStore;
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
   * empty HyperParameters to discover the space, and before `build` so unset values
   * take their defaults.
   */
  space(hp: HyperParameters): void;
  /** The preprocessing these hyperparameters need (input size may be a hyperparameter). */
  inputSpec(hp: HyperParameters): InputSpec;
  /**
   * Builds an uncompiled model ending in a softmax over `labels`; the trainer compiles it
   * with the optimizer and learning rate from `hp` (`optimizer`, `learning_rate`).
   */
  build(hp: HyperParameters, context: ModelBuildContext): tf.LayersModel | Promise<tf.LayersModel>;
  /** Name of the layer whose output is the image embedding (usually the penultimate). */
  embeddingLayer: string;
  /**
   * Loads a model this plugin saved (custom layers, extra files). Without it the tfjs
   * artifact in `dir` (model.json + weights) is loaded as is.
   */
  load?(
    dir: string,
    context: {
      tf: ModelBuildContext['tf'];
      manifest: import('../training/model-artifact.js').ModelArtifactManifest;
    },
  ): Promise<tf.LayersModel>;
  /**
   * Called after each epoch with the epoch number, to unfreeze layers for fine-tuning;
   * return true when trainability changed, so the trainer recompiles.
   */
  onEpochStart?(model: tf.LayersModel, epoch: number, hp: HyperParameters): boolean;
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
  createOracle(
    options: import('./hyperparameters.js').OracleOptions,
  ): import('./hyperparameters.js').Oracle;
}

/** Every plugin kind. */
export type Plugin = StoragePlugin | ModelPlugin | TunerPlugin;
export type PluginKind = Plugin['kind'];

/** Hooks each kind must have, checked when a plugin registers. */
export const REQUIRED_HOOKS: Record<PluginKind, readonly string[]> = {
  storage: ['createStore'],
  model: ['space', 'inputSpec', 'build'],
  tuner: ['createOracle'],
};

/** Identity at run time; gives a plugin literal its type, the way Vite's defineConfig does. */
export function definePlugin<P extends Plugin>(plugin: P): P {
  return plugin;
}
