/** One confidence bin of a reliability diagram. */
export interface ReliabilityBin {
  /** The bin holds confidences in (lower, upper]; the first also holds 0. */
  lower: number;
  upper: number;
  /** Predictions whose confidence fell in the bin. */
  count: number;
  /** Share of those predictions that were right; null when the bin is empty. */
  accuracy: number | null;
  /** Their mean confidence; null when the bin is empty. */
  confidence: number | null;
}

/** How far a classifier's confidence is from its accuracy. */
export interface Calibration {
  /**
   * Expected calibration error: Σ over bins of (count / N) × |accuracy − confidence|
   * (Guo et al., 2017). 0 for a perfectly calibrated model; 0 when there are no predictions.
   */
  ece: number;
  /** The reliability table, lowest confidences first. */
  bins: ReliabilityBin[];
}

/** Ten equal-width bins, as the calibration literature and sklearn's reliability curves use. */
export const CALIBRATION_BINS = 10;

/**
 * Calibration of top-1 predictions: each prediction's confidence (its highest probability)
 * and whether it was right, binned by confidence into `binCount` equal-width bins.
 *
 * ```ts
 * const { ece, bins } = calibration([
 *   { confidence: 0.95, correct: true },
 *   { confidence: 0.95, correct: false },
 * ]);
 * ece; // 0.45: 95% confident, 50% right
 * bins[9]; // { lower: 0.9, upper: 1, count: 2, accuracy: 0.5, confidence: 0.95 }
 * ```
 */
export function calibration(
  predictions: readonly { confidence: number; correct: boolean }[],
  binCount = CALIBRATION_BINS,
): Calibration {
  if (!Number.isInteger(binCount) || binCount < 1)
    throw new RangeError(`binCount should be a whole number ≥ 1, got ${binCount}`);
  const counts = new Array<number>(binCount).fill(0);
  const right = new Array<number>(binCount).fill(0);
  const confidence = new Array<number>(binCount).fill(0);
  for (const p of predictions) {
    const b = binOf(p.confidence, binCount);
    counts[b]! += 1;
    confidence[b]! += p.confidence;
    if (p.correct) right[b]! += 1;
  }
  const total = predictions.length;
  let ece = 0;
  const bins = counts.map((count, b): ReliabilityBin => {
    const bin = { lower: b / binCount, upper: (b + 1) / binCount, count };
    if (count === 0) return { ...bin, accuracy: null, confidence: null };
    const accuracy = right[b]! / count;
    const mean = confidence[b]! / count;
    ece += (count / total) * Math.abs(accuracy - mean);
    return { ...bin, accuracy, confidence: mean };
  });
  return { ece, bins };
}

/** The bin b with b/n < c ≤ (b+1)/n, bounds computed as the table states them. */
function binOf(c: number, n: number): number {
  let b = Math.min(n - 1, Math.max(0, Math.ceil(c * n) - 1));
  // c × n rounds: 0.3 × 10 is 3.0000000000000004. Compare against the stated bounds.
  if (b > 0 && c <= b / n) b -= 1;
  else if (b < n - 1 && c > (b + 1) / n) b += 1;
  return b;
}
