import type { EvaluationMetrics } from './evaluation.js';

/** One epoch's numbers: `epoch`, `loss`, `accuracy`, `val_loss`, `val_accuracy`, `lr`, `seconds`. */
export type EpochRecord = Record<string, number>;

export interface TrainingResult {
  status: 'FINISHED' | 'KILLED';
  /** Epoch (0-based) of the best checkpoint; null when no epoch completed. */
  bestEpoch: number | null;
  /** Completed epochs, in order. */
  history: EpochRecord[];
  /** The best checkpoint's validation scores. */
  metrics: EvaluationMetrics | null;
  /** The saved best model (`<outputDir>/model`), or null when no epoch completed. */
  artifactDir: string | null;
  /** Why training ended before `epochs`, if it did. */
  stoppedEarly: boolean;
  params: Record<string, string | number | boolean>;
}

/** What a training run reports when it starts. */
export interface TrainingStart {
  /** Hyperparameter values plus the run's settings (epochs, seed, batch size, plugin…). */
  params: Record<string, string | number | boolean>;
}

/** Per-epoch extras beside the metrics. */
export interface EpochInfo {
  /** Learning rate the epoch trained with. */
  lr: number;
  /** Wall time of the epoch, validation included. */
  seconds: number;
}

/** Per-batch extras, enough for a progress bar with an ETA. */
export interface BatchInfo {
  /** Batches in one epoch. */
  batches: number;
  /** Seconds since the epoch started. */
  seconds: number;
}

/**
 * Listens to a training run; the tracking store and the CLI's progress bar connect through
 * it. Every hook is optional and may be async: the trainer awaits it, so a slow observer
 * slows training rather than reordering events.
 *
 * ```ts
 * import type { TrainingObserver } from './training/training-observer.js';
 *
 * const log: TrainingObserver = {
 *   onEpochEnd: (epoch, metrics, { seconds }) =>
 *     console.log(`epoch ${epoch + 1}: val_accuracy ${metrics.val_accuracy} (${seconds.toFixed(1)} s)`),
 * };
 * ```
 */
export interface TrainingObserver {
  /**
   * While the data are prepared, before the model is built: the first run over a data set
   * with a backbone computes its features (`done` of `total` vectors).
   */
  onDataProgress?(progress: { stage: 'features'; done: number; total: number }): void;
  /** Before the first batch, once the model is built. */
  onStart?(start: TrainingStart): void | Promise<void>;
  /**
   * After a batch, throttled (about 4 times a second, and the epoch's last batch). `epoch`
   * and `batch` are 0-based; `loss` is the batch's training loss.
   */
  onBatchEnd?(epoch: number, batch: number, loss: number, info: BatchInfo): void | Promise<void>;
  /**
   * After each epoch's validation: `loss`, `accuracy`, `val_loss`, `val_accuracy`, `lr`.
   * `epoch` is 0-based and counts from `initialEpoch`.
   */
  onEpochEnd?(
    epoch: number,
    metrics: Record<string, number>,
    info: EpochInfo,
  ): void | Promise<void>;
  /** After the best model so far was written to `dir` (a complete, loadable artifact). */
  onCheckpoint?(dir: string): void | Promise<void>;
  /** Last, with the same result `trainModel` returns (also when it was aborted). */
  onEnd?(result: TrainingResult): void | Promise<void>;
}
