import type * as TfNode from '@tensorflow/tfjs-node';
import sharp from 'sharp';
import type { ImageDataset } from '../data/dataset.js';
import type { loadTensorflow } from '../tf/tensorflow.js';
import { regularizerLoss } from '../tf/fast-train-step.js';

type Tf = Awaited<ReturnType<typeof loadTensorflow>>;

/** One class's scores; 0 where undefined (no predictions or no examples). */
export interface ClassMetrics {
  label: string;
  precision: number;
  recall: number;
  f1: number;
  /** True examples of this class. */
  support: number;
}

/** A classifier's scores on one dataset. */
export interface EvaluationMetrics {
  /** Mean categorical cross-entropy. */
  loss: number;
  accuracy: number;
  perClass: ClassMetrics[];
  macroPrecision: number;
  macroRecall: number;
  macroF1: number;
  /** `confusionMatrix[true][predicted]` counts, in label order. */
  confusionMatrix: number[][];
  labels: string[];
}

const EPSILON = 1e-7;

/**
 * Per-example categorical cross-entropy of probabilities, clipped as Keras does so a
 * confident mistake costs a large finite loss rather than Infinity.
 */
export function categoricalCrossentropy(tf: Tf, ys: TfNode.Tensor, probs: TfNode.Tensor) {
  return tf.tidy(() =>
    ys
      .mul(probs.clipByValue(EPSILON, 1 - EPSILON).log())
      .sum(-1)
      .neg(),
  );
}

/**
 * Runs `model` (inference mode) over every batch of `dataset` and scores it. The loss is
 * the mean cross-entropy plus the regularizer penalty. Tensors are disposed batch by
 * batch; only the counts stay.
 *
 * ```ts
 * const metrics = await evaluateModel(tf, model, valDataset);
 * metrics.accuracy; // 0.97
 * metrics.confusionMatrix; // [[48, 2, 0], [1, 49, 0], [0, 0, 50]]
 * ```
 */
export async function evaluateModel(
  tf: Tf,
  model: TfNode.LayersModel,
  dataset: ImageDataset,
  options: { signal?: AbortSignal } = {},
): Promise<EvaluationMetrics> {
  const n = dataset.labels.length;
  const confusion = Array.from({ length: n }, () => new Array<number>(n).fill(0));
  let lossSum = 0;
  let seen = 0;
  for await (const { xs, ys } of dataset.batches(0)) {
    const [loss, truth, predicted] = tf.tidy(() => {
      const probs = model.predict(xs) as TfNode.Tensor;
      return [
        categoricalCrossentropy(tf, ys, probs).sum(),
        ys.argMax(-1),
        probs.argMax(-1),
      ] as const;
    });
    tf.dispose([xs, ys]);
    const [l, t, p] = await Promise.all([loss.data(), truth.data(), predicted.data()]);
    tf.dispose([loss, truth, predicted]);
    lossSum += l[0] ?? 0;
    for (let i = 0; i < t.length; i++) confusion[t[i] as number]![p[i] as number]! += 1;
    seen += t.length;
    if (options.signal?.aborted) break;
  }
  const loss = seen > 0 ? lossSum / seen + regularizationPenalty(tf, model) : NaN;
  return { loss, ...scoreConfusion(confusion, dataset.labels) };
}

/**
 * The layers' regularizer losses for the current weights, summed (0 without any): what
 * training minimises on top of the cross-entropy, so `val_loss` counts it too, as Keras's
 * does and as the training loss it is compared with does.
 */
export function regularizationPenalty(tf: Tf, model: TfNode.LayersModel): number {
  const penalty = regularizerLoss(tf, model)?.();
  if (!penalty) return 0;
  const value = penalty.dataSync()[0] ?? 0;
  penalty.dispose();
  return value;
}

/**
 * Scores predicted class probabilities against true classes: the same metrics
 * `evaluateModel` gives, from probabilities already computed (by the serving path, say).
 * The predicted class is the first highest probability, as `argMax` picks it.
 *
 * ```ts
 * const metrics = scoreProbabilities(['cat', 'dog'], [
 *   { truth: 0, probabilities: [0.9, 0.1] },
 *   { truth: 1, probabilities: [0.6, 0.4] },
 * ]);
 * metrics.accuracy; // 0.5
 * metrics.confusionMatrix; // [[1, 0], [1, 0]]
 * ```
 */
export function scoreProbabilities(
  labels: readonly string[],
  examples: readonly { truth: number; probabilities: ArrayLike<number> }[],
): EvaluationMetrics {
  const n = labels.length;
  const confusion = Array.from({ length: n }, () => new Array<number>(n).fill(0));
  let lossSum = 0;
  for (const { truth, probabilities } of examples) {
    if (!Number.isInteger(truth) || truth < 0 || truth >= n || probabilities.length !== n)
      throw new RangeError(
        `an example has class ${truth} and ${probabilities.length} of ${n} probabilities`,
      );
    confusion[truth]![argMax(probabilities)]! += 1;
    // Clipped as categoricalCrossentropy clips, so the two losses agree.
    lossSum -= Math.log(Math.min(Math.max(probabilities[truth]!, EPSILON), 1 - EPSILON));
  }
  return {
    loss: examples.length > 0 ? lossSum / examples.length : NaN,
    ...scoreConfusion(confusion, labels),
  };
}

/** Index of the first highest value. */
export function argMax(values: ArrayLike<number>): number {
  let best = 0;
  for (let i = 1; i < values.length; i++) if (values[i]! > values[best]!) best = i;
  return best;
}

/**
 * Accuracy, per-class precision/recall/F1 and their macro averages from a confusion matrix
 * (`matrix[true][predicted]`).
 *
 * ```ts
 * scoreConfusion([[2, 1], [0, 3]], ['cat', 'dog']).perClass[0];
 * // { label: 'cat', precision: 1, recall: 0.667, f1: 0.8, support: 3 }
 * ```
 */
export function scoreConfusion(
  matrix: readonly (readonly number[])[],
  labels: readonly string[],
): Omit<EvaluationMetrics, 'loss'> {
  const n = labels.length;
  let total = 0;
  let correct = 0;
  const perClass: ClassMetrics[] = labels.map((label, c) => {
    const row = matrix[c] ?? [];
    const support = row.reduce((a, b) => a + b, 0);
    const truePositive = row[c] ?? 0;
    const predicted = matrix.reduce((a, r) => a + (r[c] ?? 0), 0);
    total += support;
    correct += truePositive;
    const precision = predicted > 0 ? truePositive / predicted : 0;
    const recall = support > 0 ? truePositive / support : 0;
    const f1 = precision + recall > 0 ? (2 * precision * recall) / (precision + recall) : 0;
    return { label, precision, recall, f1, support };
  });
  const mean = (key: 'precision' | 'recall' | 'f1') =>
    n > 0 ? perClass.reduce((a, c) => a + c[key], 0) / n : 0;
  return {
    accuracy: total > 0 ? correct / total : 0,
    perClass,
    macroPrecision: mean('precision'),
    macroRecall: mean('recall'),
    macroF1: mean('f1'),
    confusionMatrix: matrix.map((row) => [...row]),
    labels: [...labels],
  };
}

/** The flat `metrics` map a run records: `val_precision_cat`, `val_macro_f1`… */
export function flattenMetrics(
  metrics: EvaluationMetrics,
  prefix = 'val_',
): Record<string, number> {
  const out: Record<string, number> = {
    [`${prefix}loss`]: metrics.loss,
    [`${prefix}accuracy`]: metrics.accuracy,
    [`${prefix}macro_precision`]: metrics.macroPrecision,
    [`${prefix}macro_recall`]: metrics.macroRecall,
    [`${prefix}macro_f1`]: metrics.macroF1,
  };
  for (const c of metrics.perClass) {
    out[`${prefix}precision_${c.label}`] = c.precision;
    out[`${prefix}recall_${c.label}`] = c.recall;
    out[`${prefix}f1_${c.label}`] = c.f1;
  }
  return out;
}

const CELL = 72;
const MARGIN_LEFT = 120;
const MARGIN_TOP = 70;
const MARGIN_BOTTOM = 70;

/**
 * The confusion matrix as a PNG heat map: rows are true classes, columns predictions, each
 * cell shaded by its share of the row (the class's recall on the diagonal) and labelled with
 * its count. Drawn as SVG and rasterised by sharp, so no canvas dependency is needed.
 *
 * ```ts
 * fs.writeFileSync('confusion_matrix.png', await confusionMatrixPng(metrics.confusionMatrix, metrics.labels));
 * ```
 */
export async function confusionMatrixPng(
  matrix: readonly (readonly number[])[],
  labels: readonly string[],
): Promise<Buffer> {
  const n = labels.length;
  const width = MARGIN_LEFT + n * CELL + 30;
  const height = MARGIN_TOP + n * CELL + MARGIN_BOTTOM;
  const parts: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" font-family="DejaVu Sans, Arial, sans-serif">`,
    `<rect width="100%" height="100%" fill="white"/>`,
    `<text x="${MARGIN_LEFT + (n * CELL) / 2}" y="28" font-size="18" text-anchor="middle" font-weight="bold">Confusion matrix</text>`,
  ];
  for (let t = 0; t < n; t++) {
    const row = matrix[t] ?? [];
    const rowTotal = row.reduce((a, b) => a + b, 0);
    const y = MARGIN_TOP + t * CELL;
    parts.push(
      `<text x="${MARGIN_LEFT - 10}" y="${y + CELL / 2 + 5}" font-size="14" text-anchor="end">${escapeXml(labels[t] ?? '')}</text>`,
    );
    for (let p = 0; p < n; p++) {
      const count = row[p] ?? 0;
      const share = rowTotal > 0 ? count / rowTotal : 0;
      const x = MARGIN_LEFT + p * CELL;
      parts.push(
        `<rect x="${x}" y="${y}" width="${CELL}" height="${CELL}" fill="${heat(share)}" stroke="#cccccc"/>`,
        `<text x="${x + CELL / 2}" y="${y + CELL / 2 + 6}" font-size="16" text-anchor="middle" fill="${share > 0.5 ? 'white' : 'black'}">${count}</text>`,
      );
    }
  }
  for (let p = 0; p < n; p++) {
    parts.push(
      `<text x="${MARGIN_LEFT + p * CELL + CELL / 2}" y="${MARGIN_TOP + n * CELL + 22}" font-size="14" text-anchor="middle">${escapeXml(labels[p] ?? '')}</text>`,
    );
  }
  parts.push(
    `<text x="${MARGIN_LEFT + (n * CELL) / 2}" y="${height - 16}" font-size="14" text-anchor="middle" font-style="italic">predicted</text>`,
    `<text x="20" y="${MARGIN_TOP + (n * CELL) / 2}" font-size="14" text-anchor="middle" font-style="italic" transform="rotate(-90 20 ${MARGIN_TOP + (n * CELL) / 2})">true</text>`,
    '</svg>',
  );
  return sharp(Buffer.from(parts.join('\n')))
    .png()
    .toBuffer();
}

/** White to dark blue. */
function heat(share: number): string {
  const mix = (from: number, to: number) => Math.round(from + (to - from) * share);
  return `rgb(${mix(247, 8)},${mix(251, 48)},${mix(255, 107)})`;
}

function escapeXml(text: string): string {
  return text.replace(/[<>&"']/g, (c) => `&#${c.charCodeAt(0)};`);
}
