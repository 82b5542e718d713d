import type { Batch, ImageDataset } from '../../data/dataset.js';
import type { InputSpec } from '../../data/input-spec.js';
import { createRng } from '../../core/random.js';
import { loadTensorflow } from '../../tf/tensorflow.js';

export interface SyntheticDatasetOptions {
  labels?: readonly string[];
  perClass: number | readonly number[];
  size: number;
  batchSize: number;
  seed?: number | string;
  shuffle?: boolean;
  /** Pixel noise (0–255 scale) around each class's colour; larger is harder. */
  noise?: number;
  scale?: number;
  offset?: number;
}

/**
 * An in-memory ImageDataset of separable classes: class `c` is a noisy image whose
 * channel `c % 3` is bright and, for c ≥ 3, whose left half is dark. Deterministic per seed.
 */
export function syntheticDataset(options: SyntheticDatasetOptions): ImageDataset {
  const labels = options.labels ?? ['cat', 'dog', 'wild'];
  const { size, batchSize } = options;
  const counts = labels.map((_, c) =>
    typeof options.perClass === 'number' ? options.perClass : (options.perClass[c] ?? 0),
  );
  const spec: InputSpec = {
    size,
    channels: 3,
    fit: 'fill',
    scale: options.scale ?? 1 / 255,
    offset: options.offset ?? 0,
  };
  const rng = createRng(options.seed ?? 'synthetic');
  const noise = options.noise ?? 60;
  const examples: { pixels: Float32Array; label: number }[] = [];
  counts.forEach((count, c) => {
    for (let k = 0; k < count; k++) {
      const pixels = new Float32Array(size * size * 3);
      for (let y = 0; y < size; y++) {
        for (let x = 0; x < size; x++) {
          for (let ch = 0; ch < 3; ch++) {
            let v = (ch === c % 3 ? 170 : 85) + rng.normal(0, noise);
            if (c >= 3 && x < size / 2) v *= 0.3;
            pixels[(y * size + x) * 3 + ch] =
              Math.min(255, Math.max(0, v)) * spec.scale + spec.offset;
          }
        }
      }
      examples.push({ pixels, label: c });
    }
  });
  const total = examples.length;
  const classWeights: Record<number, number> = {};
  counts.forEach((n, i) => (classWeights[i] = n > 0 ? total / (labels.length * n) : 0));
  return {
    labels,
    size: total,
    batchSize,
    spec,
    counts,
    classWeights,
    async *batches(epoch: number): AsyncGenerator<Batch> {
      const tf = await loadTensorflow();
      const order = examples.map((_, i) => i);
      if (options.shuffle ?? true) {
        const r = createRng(`${String(options.seed ?? 'synthetic')}/order/${epoch}`);
        for (let i = order.length - 1; i > 0; i--) {
          const j = r.int(0, i);
          [order[i], order[j]] = [order[j]!, order[i]!];
        }
      }
      for (let start = 0; start < total; start += batchSize) {
        const ids = order.slice(start, start + batchSize);
        const xs = new Float32Array(ids.length * size * size * 3);
        const ys = new Float32Array(ids.length * labels.length);
        ids.forEach((id, i) => {
          const e = examples[id]!;
          xs.set(e.pixels, i * size * size * 3);
          ys[i * labels.length + e.label] = 1;
        });
        yield {
          xs: tf.tensor4d(xs, [ids.length, size, size, 3]),
          ys: tf.tensor2d(ys, [ids.length, labels.length]),
        };
      }
    },
    async close() {},
  };
}
