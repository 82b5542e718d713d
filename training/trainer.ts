import fs from 'node:fs/promises';
import path from 'node:path';
import type * as TfNode from '@tensorflow/tfjs-node';
import type { ImageDataset } from '../data/dataset.js';
import { MenagerieError } from '../core/errors.js';
import { createRng, type Rng } from '../core/random.js';
import { loadTensorflow } from '../tf/tensorflow.js';
import type { BackboneUse, LoadedBackbone, ModelPlugin } from '../plugin-api/plugin.js';
import type { InputSpec } from '../data/input-spec.js';
import type { Backbone } from './backbone-loader.js';
import { keepFrozenBatchNormInInferenceMode, unfreezeTopBlocks } from './fine-tune.js';
import {
  confusionMatrixPng,
  evaluateModel,
  flattenMetrics,
  type EvaluationMetrics,
} from './evaluation.js';
import { installFastKernels } from '../tf/fast-kernels.js';
import { createFastOptimizer, type FastOptimizerKind } from '../tf/fast-optimizer.js';
import { fastTrainStep, type TrainStep } from '../tf/fast-train-step.js';
import { HyperParameters, type HpValue } from '../plugin-api/hyperparameters.js';
import { loadModelArtifact, saveModelArtifact } from './model-artifact.js';
import type { EpochRecord, TrainingObserver, TrainingResult } from './training-observer.js';

type Tf = Awaited<ReturnType<typeof loadTensorflow>>;

/** A metric the trainer can watch: lower val_loss or higher val_accuracy is better. */
export type MonitoredMetric = 'val_loss' | 'val_accuracy' | 'loss' | 'accuracy';

export interface EarlyStoppingOptions {
  /** Default `val_loss`. */
  monitor?: MonitoredMetric;
  /** Epochs without an improvement of at least `minDelta` before stopping. */
  patience: number;
  /** Default 0. */
  minDelta?: number;
}

export interface ReduceLrOnPlateauOptions {
  /** Default `val_loss`. */
  monitor?: MonitoredMetric;
  /** The learning rate is multiplied by it (default 0.2, as Keras). */
  factor?: number;
  /** Epochs without improvement before reducing. */
  patience: number;
  /** Never below this (default 0). */
  minLr?: number;
}

export interface TrainModelOptions {
  plugin: ModelPlugin;
  /** Values for the plugin's space; unset ones take their defaults. */
  hp: HyperParameters | Record<string, HpValue>;
  train: ImageDataset;
  val: ImageDataset;
  /** Train until this epoch count (exclusive end, as Keras `epochs`). */
  epochs: number;
  /** Seeds initial weights and dropout; the datasets' own seeds fix their order. */
  seed: number;
  /** First epoch (0-based), when continuing a run (Keras `initial_epoch`). */
  initialEpoch?: number;
  /** A model artifact whose weights replace the freshly built ones (Hyperband promotions). */
  warmStartDir?: string;
  /** Receives `model/` (the best checkpoint, the final artifact). */
  outputDir: string;
  /** Aborting stops at the next batch boundary; the result is KILLED with the best checkpoint. */
  signal?: AbortSignal;
  observer?: TrainingObserver;
  /** What "best" means for the checkpoint; default `val_loss`. */
  monitor?: MonitoredMetric;
  earlyStopping?: EarlyStoppingOptions;
  reduceLrOnPlateau?: ReduceLrOnPlateauOptions;
  /** Weight the loss by the training set's class weights (imbalanced data). */
  classWeights?: boolean;
  /**
   * The loaded backbone, when the plugin's `backbone(hp)` names one: `train` and `val` then
   * hold its features, and the plugin builds only the head.
   */
  backbone?: Backbone;
  /**
   * For `backbone(hp).fineTune`: pixel data sets at the backbone's input spec, and a private
   * trainable copy of the backbone (the trainer owns and frees it), for the epochs where the
   * top blocks train with the head.
   */
  fineTune?: { train: ImageDataset; val: ImageDataset; backbone: LoadedBackbone };
}

/** What `onEpochStart` gets when the caller passed no signal. */
const NEVER_ABORTED = new AbortController().signal;

/** Batch-end reports to observers are at most this frequent. */
const BATCH_REPORT_MS = 250;

/**
 * Trains a model plugin on `train`, validating on `val` after each epoch, saving the best
 * weights (by `monitor`) as a model artifact with its manifest, evaluation and confusion
 * matrix. A custom loop over `train.batches(epoch)`: one training step per batch (native for
 * Sequential CNNs, `optimizer.minimize` otherwise; see tf/fast-train-step.ts), so
 * an abort lands between batches and no tensor outlives its batch.
 *
 * ```ts
 * import { cnnModel } from './plugins/models/cnn.js';
 * import { trainModel } from './training/trainer.js';
 *
 * const controller = new AbortController();
 * process.once('SIGINT', () => controller.abort());
 * const result = await trainModel({
 *   plugin: cnnModel(), hp: { dense_units: 256 }, train, val, epochs: 10, seed: 42,
 *   outputDir: 'runs/42', signal: controller.signal,
 *   earlyStopping: { monitor: 'val_loss', patience: 3 },
 * });
 * result.metrics?.accuracy; // 0.97, from `${result.artifactDir}/menagerie.json` too
 * ```
 */
export async function trainModel(options: TrainModelOptions): Promise<TrainingResult> {
  const tf = await loadTensorflow();
  // Numerically equivalent native kernels for ReLU/max-pool gradients, fused conv+bias,
  // bias gradients (see fast-step.ts): about 2.5× the stock tfjs step on the reference CNN.
  installFastKernels(tf);
  const { plugin, epochs, seed, observer, signal } = options;
  let { train, val } = options;
  const initialEpoch = options.initialEpoch ?? 0;
  checkOptions(options, initialEpoch);
  const hp = options.hp instanceof HyperParameters ? options.hp : new HyperParameters(options.hp);
  plugin.space(hp);
  const input = plugin.inputSpec(hp);
  const use = plugin.backbone?.(hp) ?? null;
  const backbone = checkBackbone(plugin, use, input, options);
  const labels = [...train.labels];
  const hpValues = hp.values;
  const learningRate = numberOr(hpValues.learning_rate, 1e-3);
  const optimizerName = String(hpValues.optimizer ?? 'adam');
  const params: Record<string, string | number | boolean> = {
    ...hpValues,
    plugin: plugin.name,
    plugin_version: plugin.version ?? '',
    epochs,
    initial_epoch: initialEpoch,
    seed,
    batch_size: train.batchSize,
    train_size: train.size,
    val_size: val.size,
    class_weights: options.classWeights ?? false,
  };
  const monitor = options.monitor ?? 'val_loss';
  const artifactDir = path.join(path.resolve(options.outputDir), 'model');
  await fs.mkdir(options.outputDir, { recursive: true });

  const model = await plugin.build(hp, {
    tf,
    labels,
    input,
    seed,
    ...(signal && { signal }),
    ...(backbone && { features: { size: backbone.loaded.featureSize } }),
  });
  // The model trained and saved: the head, or after fine-tuning starts, backbone + head.
  let current = model;
  let fineTuned: TfNode.LayersModel | null = null;
  let optimizer: TfNode.Optimizer | undefined;
  let classWeights: TfNode.Tensor | undefined;
  try {
    checkModel(model, plugin, labels.length, backbone?.loaded.featureSize);
    keepFrozenBatchNormInInferenceMode(model);
    if (options.warmStartDir) await warmStart(model, options.warmStartDir);
    if (options.classWeights) {
      classWeights = tf.tensor2d(
        labels.map((_, i) => [train.classWeights[i] ?? 1]),
        [labels.length, 1],
      );
    }
    await observer?.onStart?.({ params });

    let lr = learningRate;
    optimizer = createOptimizer(tf, optimizerName, lr);
    // Native forward and backward passes for Sequential CNNs; optimizer.minimize otherwise.
    let step: TrainStep = fastTrainStep(tf, model, optimizer);
    const history: EpochRecord[] = [];
    const best = new Plateau(monitor, 0);
    const stopper = options.earlyStopping
      ? new Plateau(
          options.earlyStopping.monitor ?? 'val_loss',
          options.earlyStopping.minDelta ?? 0,
        )
      : undefined;
    const reducer = options.reduceLrOnPlateau
      ? new Plateau(options.reduceLrOnPlateau.monitor ?? 'val_loss', 0)
      : undefined;
    let bestEpoch: number | null = null;
    let bestMetrics: EvaluationMetrics | null = null;
    let stoppedEarly = false;
    const batchesPerEpoch = Math.ceil(train.size / train.batchSize);

    const fineTune = use?.fineTune && options.fineTune ? use.fineTune : null;
    let headConverged = false;
    for (let epoch = initialEpoch; epoch < epochs && !signal?.aborted; epoch++) {
      let retrain = await plugin.onEpochStart?.(current, epoch, hp, {
        signal: signal ?? NEVER_ABORTED,
      });
      if (fineTune && !fineTuned && (epoch >= fineTune.afterEpoch || headConverged)) {
        // The head has converged on frozen features: the top blocks now train with it, on
        // pixels, at a lower rate.
        fineTuned = current = unfreezeTopBlocks(
          tf,
          options.fineTune!.backbone,
          model,
          fineTune.blocks,
        );
        ({ train, val } = options.fineTune!);
        lr *= fineTune.learningRateFactor;
        stopper?.reset();
        reducer?.reset();
        retrain = true;
      }
      if (retrain) {
        // Trainability changed: fresh optimizer state for the new variable set.
        optimizer.dispose();
        optimizer = createOptimizer(tf, optimizerName, lr);
        step = fastTrainStep(tf, current, optimizer);
      }
      if (signal?.aborted) break;
      const started = performance.now();
      const dropoutRng = createRng(seed).fork(`dropout/${epoch}`);
      let lossSum = 0;
      let correct = 0;
      let seen = 0;
      let batch = 0;
      let lastReport = started;
      for await (const { xs, ys } of train.batches(epoch)) {
        if (signal?.aborted) {
          tf.dispose([xs, ys]);
          break;
        }
        const result = trainStep(tf, step, xs, ys, classWeights, dropoutRng);
        tf.dispose([xs, ys]);
        const [loss, hits] = await Promise.all([result.loss.data(), result.correct.data()]);
        tf.dispose([result.loss, result.correct]);
        const n = ys.shape[0];
        lossSum += (loss[0] ?? 0) * n;
        correct += hits[0] ?? 0;
        seen += n;
        const now = performance.now();
        if (
          observer?.onBatchEnd &&
          (now - lastReport >= BATCH_REPORT_MS || batch === batchesPerEpoch - 1)
        ) {
          lastReport = now;
          await observer.onBatchEnd(epoch, batch, loss[0] ?? NaN, {
            batches: batchesPerEpoch,
            seconds: (now - started) / 1000,
          });
        }
        batch++;
      }
      if (signal?.aborted) break;
      const evaluation = await evaluateModel(tf, current, val, signal ? { signal } : {});
      if (signal?.aborted) break;
      const metrics: EpochRecord = {
        loss: lossSum / Math.max(seen, 1),
        accuracy: correct / Math.max(seen, 1),
        val_loss: evaluation.loss,
        val_accuracy: evaluation.accuracy,
        lr,
      };
      const seconds = (performance.now() - started) / 1000;
      history.push({ epoch, ...metrics, seconds });
      await observer?.onEpochEnd?.(epoch, metrics, { lr, seconds });

      if (best.improved(metrics)) {
        bestEpoch = epoch;
        bestMetrics = evaluation;
        await saveModelArtifact(artifactDir, current, {
          plugin: plugin.name,
          pluginVersion: plugin.version ?? null,
          labels,
          inputSpec: input,
          hyperparameters: hpValues,
          embeddingLayer: plugin.embeddingLayer,
          epoch,
          metrics: {
            ...flattenMetrics(evaluation),
            loss: metrics.loss!,
            accuracy: metrics.accuracy!,
          },
          ...(backbone && { backbone: backbone.record(fineTuned !== null) }),
        });
        await observer?.onCheckpoint?.(artifactDir);
      }
      if (stopper && !stopper.improved(metrics) && stopper.wait > options.earlyStopping!.patience) {
        // A head that stopped improving is what fine-tuning waits for; after it, stop.
        if (fineTune && !fineTuned) {
          headConverged = true;
        } else {
          stoppedEarly = epoch + 1 < epochs;
          break;
        }
      }
      if (
        reducer &&
        !reducer.improved(metrics) &&
        reducer.wait > options.reduceLrOnPlateau!.patience
      ) {
        const next = Math.max(
          lr * (options.reduceLrOnPlateau!.factor ?? 0.2),
          options.reduceLrOnPlateau!.minLr ?? 0,
        );
        if (next < lr) setLearningRate(optimizer, (lr = next));
        reducer.wait = 0;
      }
    }

    if (bestMetrics) {
      await fs.writeFile(
        path.join(artifactDir, 'confusion_matrix.png'),
        await confusionMatrixPng(bestMetrics.confusionMatrix, labels),
      );
      await fs.writeFile(
        path.join(artifactDir, 'evaluation.json'),
        `${JSON.stringify(bestMetrics, null, 2)}\n`,
      );
    }
    const result: TrainingResult = {
      status: signal?.aborted ? 'KILLED' : 'FINISHED',
      bestEpoch,
      history,
      metrics: bestMetrics,
      artifactDir: bestMetrics ? artifactDir : null,
      stoppedEarly,
      params,
    };
    await observer?.onEnd?.(result);
    return result;
  } finally {
    optimizer?.dispose();
    classWeights?.dispose();
    // The fine-tuned model holds the backbone copy's layers and the head's; the head model
    // holds the head's again (tfjs counts references per use).
    fineTuned?.dispose();
    if (options.fineTune && !fineTuned) options.fineTune.backbone.dispose();
    model.dispose();
  }
}

/**
 * Checks the backbone `backbone(hp)` asks for is the one the caller loaded, and that the
 * plugin feeds it the preprocessing it was trained with.
 */
function checkBackbone(
  plugin: ModelPlugin,
  use: BackboneUse | null,
  input: InputSpec,
  options: TrainModelOptions,
): Backbone | null {
  const bad = (message: string) => new MenagerieError('PLUGIN_INVALID', message);
  if (!use) return null;
  const given = options.backbone;
  const wanted = typeof use.backbone === 'string' ? use.backbone : use.backbone.name;
  if (!given) throw bad(`model plugin '${plugin.name}' needs backbone ${wanted}; none was loaded`);
  if (JSON.stringify(given.plugin.inputSpec) !== JSON.stringify(input)) {
    throw bad(
      `model plugin '${plugin.name}' feeds ${JSON.stringify(input)}, backbone ${given.plugin.name} ` +
        `was trained on ${JSON.stringify(given.plugin.inputSpec)}`,
    );
  }
  if (use.fineTune && options.fineTune && !options.fineTune.backbone.trainable) {
    throw bad(`backbone ${given.plugin.name} is not trainable; it cannot be fine-tuned`);
  }
  return given;
}

/**
 * One optimisation step. Synchronous from forward pass to weight update, so dropout's
 * masks can be drawn from the seeded stream by lending it to Math.random for the step
 * (tfjs seeds each unseeded random op from Math.random).
 */
function trainStep(
  tf: Tf,
  step: TrainStep,
  xs: TfNode.Tensor,
  ys: TfNode.Tensor,
  classWeights: TfNode.Tensor | undefined,
  rng: Rng,
): { loss: TfNode.Scalar; correct: TfNode.Scalar } {
  const random = Math.random;
  Math.random = rng.next;
  const exampleWeights = classWeights
    ? tf.tidy(() => ys.matMul(classWeights).reshape([-1]))
    : undefined;
  try {
    return step(xs, ys, exampleWeights);
  } finally {
    Math.random = random;
    exampleWeights?.dispose();
  }
}

/** Tracks the best value of one metric and epochs since it last improved. */
class Plateau {
  best = Number.NaN;
  wait = 0;
  readonly #lowerIsBetter: boolean;

  constructor(
    readonly monitor: MonitoredMetric,
    readonly minDelta: number,
  ) {
    this.#lowerIsBetter = !monitor.endsWith('accuracy');
  }

  /** Records this epoch's value; true when it beats the best by more than `minDelta`. */
  improved(metrics: EpochRecord): boolean {
    const value = metrics[this.monitor];
    if (value === undefined || Number.isNaN(value)) {
      this.wait++;
      return false;
    }
    const delta = this.#lowerIsBetter ? this.best - value : value - this.best;
    if (Number.isNaN(this.best) || delta > this.minDelta) {
      this.best = value;
      this.wait = 0;
      return true;
    }
    this.wait++;
    return false;
  }

  /** Starts counting again (a new training phase); the best value so far is kept. */
  reset(): void {
    this.wait = 0;
  }
}

function createOptimizer(tf: Tf, name: string, lr: number): TfNode.Optimizer {
  if (!(OPTIMIZERS as readonly string[]).includes(name)) {
    throw new MenagerieError(
      'HP_INVALID',
      `optimizer should be adam, sgd or rmsprop, got '${name}'`,
    );
  }
  // TensorFlow's single-op updates (Adam as Keras computes it): ~10× fewer ops a step.
  return createFastOptimizer(tf, name as FastOptimizerKind, { learningRate: lr });
}

const OPTIMIZERS: readonly FastOptimizerKind[] = ['adam', 'sgd', 'rmsprop'];

/** SGD caches its rate as a tensor (and has a setter); Adam and RMSProp read the field. */
function setLearningRate(optimizer: TfNode.Optimizer, lr: number): void {
  const o = optimizer as unknown as {
    learningRate: number;
    setLearningRate?: (lr: number) => void;
  };
  if (o.setLearningRate) o.setLearningRate(lr);
  else o.learningRate = lr;
}

async function warmStart(model: TfNode.LayersModel, dir: string): Promise<void> {
  const { model: saved } = await loadModelArtifact(dir);
  try {
    const from = saved.getWeights();
    const to = model.getWeights();
    const same =
      from.length === to.length && from.every((w, i) => w.shape.join() === to[i]?.shape.join());
    if (!same) {
      throw new MenagerieError(
        'MODEL_ARTIFACT_INVALID',
        `${dir}: its weights do not fit the model built from these hyperparameters`,
      );
    }
    model.setWeights(from);
  } finally {
    saved.dispose();
  }
}

/** The caller disposes the model, also when this throws. */
function checkModel(
  model: TfNode.LayersModel,
  plugin: ModelPlugin,
  classes: number,
  featureSize: number | undefined,
): void {
  const units = model.outputs[0]?.shape.at(-1);
  const inputShape = model.inputs[0]?.shape;
  const problem =
    model.outputs.length !== 1 || units !== classes
      ? `should end in one softmax of ${classes} units, got output shape ${JSON.stringify(model.outputs.map((o) => o.shape))}`
      : !model.layers.some((l) => l.name === plugin.embeddingLayer)
        ? `has no embedding layer '${plugin.embeddingLayer}'`
        : featureSize !== undefined &&
            JSON.stringify(inputShape) !== JSON.stringify([null, featureSize])
          ? `should take the backbone's [null, ${featureSize}] features, got input shape ${JSON.stringify(inputShape)}`
          : null;
  if (problem) {
    throw new MenagerieError(
      'PLUGIN_INVALID',
      `model plugin '${plugin.name}' built a model that ${problem}`,
    );
  }
}

function checkOptions(options: TrainModelOptions, initialEpoch: number): void {
  const bad = (message: string) => new MenagerieError('CONFIG_INVALID', message);
  if (!Number.isInteger(options.epochs) || options.epochs < 1) {
    throw bad(`epochs should be a positive integer, got ${options.epochs}`);
  }
  if (!Number.isInteger(initialEpoch) || initialEpoch < 0 || initialEpoch >= options.epochs) {
    throw bad(`initialEpoch should be an integer in [0, epochs), got ${initialEpoch}`);
  }
  if (!Number.isInteger(options.seed)) throw bad(`seed should be an integer, got ${options.seed}`);
  const { train, val } = options;
  if (train.labels.join('\n') !== val.labels.join('\n')) {
    throw bad(
      `train and val label orders differ: [${train.labels.join(', ')}] vs [${val.labels.join(', ')}]`,
    );
  }
  if (train.size === 0 || val.size === 0) {
    throw new MenagerieError(
      'DATASET_EMPTY',
      `train has ${train.size} images, val ${val.size}; both need some`,
    );
  }
}

function numberOr(value: HpValue | undefined, fallback: number): number {
  return typeof value === 'number' ? value : fallback;
}
