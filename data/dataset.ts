import type * as tf from '@tensorflow/tfjs-node';
import type { InputSpec } from './input-spec.js';

/** One training or evaluation batch; the consumer disposes both tensors. */
export interface Batch {
  /**
   * [n, size, size, 3] float32 pixels already scaled by the dataset's InputSpec, or, for a
   * data set of backbone features, [n, featureSize].
   */
  xs: tf.Tensor4D | tf.Tensor2D;
  /** [n, labels.length] one-hot float32. */
  ys: tf.Tensor2D;
}

/**
 * Images of one split as batches of tensors. The dataset loader implements it on SQLite
 * and the blob store; the trainer consumes it.
 *
 * ```ts
 * for await (const { xs, ys } of dataset.batches(epoch)) {
 *   await model.trainOnBatch(xs, ys);
 *   tf.dispose([xs, ys]);
 * }
 * ```
 */
export interface ImageDataset {
  /** Class names in one-hot order. */
  readonly labels: readonly string[];
  /** Number of examples in one epoch. */
  readonly size: number;
  readonly batchSize: number;
  readonly spec: InputSpec;
  /** Examples per class, in `labels` order. */
  readonly counts: readonly number[];
  /** Keras-style `class_weight`: total / (classes × count), by class index. */
  readonly classWeights: Record<number, number>;
  /**
   * The batches of epoch `epoch` (0-based). Order is shuffled from (seed, epoch) when the
   * dataset shuffles, so the same seed replays the same order; augmentation likewise.
   */
  batches(epoch: number): AsyncIterable<Batch>;
  /** Releases cache handles and worker resources. */
  close(): Promise<void>;
}
