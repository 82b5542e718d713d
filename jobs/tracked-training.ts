import type { Kysely } from 'kysely';
import type { BlobStore } from '../data/blob-store.js';
import type { Database } from '../data/tables.js';
import type { PluginRegistry } from '../plugin-api/plugin-registry.js';
import { HyperParameters, type HpValue } from '../plugin-api/hyperparameters.js';
import {
  trainModel,
  type EarlyStoppingOptions,
  type ReduceLrOnPlateauOptions,
} from '../training/trainer.js';
import type { TrainingObserver, TrainingResult } from '../training/training-observer.js';
import { MODEL_ARTIFACT_PATH } from '../tracking/run-evaluation.js';
import type { TrackingStore } from '../tracking/tracking-store.js';
import type { BackboneLoader } from '../training/backbone-loader.js';
import { openTrainingData } from './training-data.js';

/** What a tracked job needs from an open data directory. */
export interface JobContext {
  db: Kysely<Database>;
  blobs: BlobStore;
  dataDir: string;
  plugins: PluginRegistry;
  tracking: TrackingStore;
  /** Pretrained backbones, loaded once per process. */
  backbones: BackboneLoader;
}

export interface TrackedTrainingOptions {
  /** Model plugin name, e.g. `menagerie:cnn`. */
  plugin: string;
  /** Hyperparameter values; unset ones take the plugin's defaults. */
  hp?: Record<string, HpValue>;
  epochs: number;
  batchSize?: number;
  seed?: number;
  /** Experiment name, created if new; default `default`. */
  experiment?: string;
  runName?: string;
  /** Tuning trials are child runs of the tuning run. */
  parentRunId?: string;
  tags?: Record<string, string>;
  /** Augment the training split (default true). */
  augment?: boolean;
  /** Weight the loss by class frequency (default true: AFHQ's classes are uneven). */
  classWeights?: boolean;
  earlyStopping?: EarlyStoppingOptions | false;
  reduceLrOnPlateau?: ReduceLrOnPlateauOptions | false;
  /** Continue from another model artifact's weights (Hyperband promotions). */
  warmStartDir?: string;
  initialEpoch?: number;
  /** At most this many images per label and split (quick runs, tests). */
  limitPerLabel?: number;
  signal?: AbortSignal;
  /** Extra listener (progress bar, job events) beside the tracking store. */
  observer?: TrainingObserver;
  /** Called once the run exists, before any data is read. */
  onRun?: (runId: string) => void;
}

/**
 * Trains a model plugin on the data directory's train and val splits as one tracked run:
 * params at the start, metrics every epoch (step = epoch), the best model as the run's
 * `model/` artifact, status FINISHED, KILLED (aborted) or FAILED (with the error as the
 * `menagerie.error` tag). The run is heart-beaten while it trains, so a killed process is
 * found out at the next start.
 *
 * ```ts
 * const { runId, result } = await runTrackedTraining(context, { plugin: 'menagerie:cnn', epochs: 10 });
 * ```
 */
export async function runTrackedTraining(
  context: JobContext,
  options: TrackedTrainingOptions,
): Promise<{ runId: string; result: TrainingResult }> {
  const { tracking } = context;
  const plugin = context.plugins.get('model', options.plugin);
  const experiment = await tracking.getOrCreateExperiment(options.experiment ?? 'default');
  const run = await tracking.createRun({
    experimentId: experiment.id,
    ...(options.runName !== undefined && { name: options.runName }),
    ...(options.parentRunId !== undefined && { parentRunId: options.parentRunId }),
    tags: { 'menagerie.plugin': plugin.name, ...options.tags },
  });
  options.onRun?.(run.id);
  const stopHeartbeat = tracking.keepAlive(run.id);
  try {
    const hp = new HyperParameters(options.hp ?? {});
    plugin.space(hp);
    const seed = options.seed ?? 42;
    const data = await openTrainingData({
      ...context,
      plugin,
      hp,
      batchSize: options.batchSize ?? 32,
      seed,
      augment: options.augment ?? true,
      ...(options.limitPerLabel !== undefined && { limitPerLabel: options.limitPerLabel }),
      ...(options.signal && { signal: options.signal }),
      ...(options.observer?.onDataProgress && {
        onFeatures: (done: number, total: number) =>
          options.observer!.onDataProgress!({ stage: 'features', done, total }),
      }),
    });
    const outputDir = await tracking.artifactPath(run.id);
    try {
      const result = await trainModel({
        plugin,
        hp,
        train: data.train,
        val: data.val,
        ...(data.backbone && { backbone: data.backbone }),
        ...(data.fineTune && { fineTune: data.fineTune }),
        epochs: options.epochs,
        seed,
        outputDir,
        classWeights: options.classWeights ?? true,
        ...(options.initialEpoch !== undefined && { initialEpoch: options.initialEpoch }),
        ...(options.warmStartDir !== undefined && { warmStartDir: options.warmStartDir }),
        ...(options.signal && { signal: options.signal }),
        ...(options.earlyStopping !== false && {
          earlyStopping: options.earlyStopping ?? { monitor: 'val_loss', patience: 4 },
        }),
        ...(options.reduceLrOnPlateau !== false && {
          reduceLrOnPlateau: options.reduceLrOnPlateau ?? {
            monitor: 'val_loss',
            patience: 2,
            factor: 0.3,
            minLr: 1e-6,
          },
        }),
        observer: trackingObserver(tracking, run.id, options.observer),
      });
      // The evaluation and its plots are written at the end, after the last checkpoint.
      await tracking.uploadArtifacts(run.id);
      await tracking.endRun(run.id, result.status);
      return { runId: run.id, result };
    } finally {
      await data.close();
    }
  } catch (error) {
    const message = error instanceof Error ? error.message : String(error);
    await tracking.setTag(run.id, 'menagerie.error', message.slice(0, 8000)).catch(() => {});
    // A cancel that lands while the plugin builds (fetching weights) is a kill, not a failure.
    await tracking.endRun(run.id, options.signal?.aborted ? 'KILLED' : 'FAILED').catch(() => {});
    throw error;
  } finally {
    stopHeartbeat();
  }
}

/** Forwards trainer events to the tracking store, then to `next`. */
function trackingObserver(
  tracking: TrackingStore,
  runId: string,
  next: TrainingObserver | undefined,
): TrainingObserver {
  return {
    async onStart(start) {
      await tracking.logParams(runId, start.params);
      await next?.onStart?.(start);
    },
    onBatchEnd: (epoch, batch, loss, info) => next?.onBatchEnd?.(epoch, batch, loss, info),
    async onEpochEnd(epoch, metrics, info) {
      await tracking.logMetrics(
        runId,
        { ...metrics, epoch_seconds: info.seconds },
        { step: epoch },
      );
      await next?.onEpochEnd?.(epoch, metrics, info);
    },
    async onCheckpoint(dir) {
      // Every checkpoint reaches the artifact store (S3), so a crash loses at most an epoch.
      await tracking.uploadArtifacts(runId);
      await tracking.setTag(runId, 'menagerie.model_artifact', MODEL_ARTIFACT_PATH);
      await next?.onCheckpoint?.(dir);
    },
    async onEnd(result) {
      if (result.metrics && result.bestEpoch !== null) {
        const m = result.metrics;
        const best: Record<string, number> = {
          best_epoch: result.bestEpoch,
          best_val_accuracy: m.accuracy,
          best_val_loss: m.loss,
        };
        for (const c of m.perClass) {
          best[`val_f1_${c.label}`] = c.f1;
          best[`val_precision_${c.label}`] = c.precision;
          best[`val_recall_${c.label}`] = c.recall;
        }
        await tracking.logMetrics(runId, best, { step: result.bestEpoch });
      }
      await next?.onEnd?.(result);
    },
  };
}
