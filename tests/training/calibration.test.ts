import { describe, expect, it } from 'vitest';
import { calibration } from '../../training/calibration.js';
import { scoreProbabilities } from '../../training/evaluation.js';

describe('calibration', () => {
  it('bins by (lower, upper], the first bin holding 0, whatever float rounding says', () => {
    const at = (confidence: number) =>
      calibration([{ confidence, correct: true }]).bins.findIndex((b) => b.count === 1);
    // 0.3 × 10 is 3.0000000000000004 and 0.7 × 10 is 7.000000000000001 in float64.
    expect([0, 0.05, 0.1, 0.1000001, 0.3, 0.7, 0.95, 1].map(at)).toEqual([0, 0, 0, 1, 2, 6, 9, 9]);
  });

  it('weighs each bin’s |accuracy − confidence| by its share of the predictions', () => {
    const { ece, bins } = calibration([
      { confidence: 0.95, correct: true },
      { confidence: 0.95, correct: false },
      { confidence: 0.55, correct: true },
      { confidence: 0.65, correct: true },
    ]);
    // Bin 9: 2 of 4, accuracy 0.5, confidence 0.95; bin 5: 1.0 vs 0.55; bin 6: 1.0 vs 0.65.
    expect(ece).toBeCloseTo((2 / 4) * 0.45 + (1 / 4) * 0.45 + (1 / 4) * 0.35, 12);
    expect(bins[9]).toEqual({ lower: 0.9, upper: 1, count: 2, accuracy: 0.5, confidence: 0.95 });
    expect(bins[0]).toEqual({ lower: 0, upper: 0.1, count: 0, accuracy: null, confidence: null });
    expect(calibration([]).ece).toBe(0);
  });

  it('scores probabilities with the clipped cross-entropy and first-maximum predictions', () => {
    const metrics = scoreProbabilities(
      ['cat', 'dog'],
      [
        { truth: 0, probabilities: [0.5, 0.5] },
        { truth: 1, probabilities: [1, 0] },
      ],
    );
    expect(metrics.confusionMatrix).toEqual([
      [1, 0],
      [1, 0],
    ]);
    expect(metrics.loss).toBeCloseTo((-Math.log(0.5) - Math.log(1e-7)) / 2, 6);
    expect(() => scoreProbabilities(['cat'], [{ truth: 1, probabilities: [1] }])).toThrow(
      RangeError,
    );
  });
});
