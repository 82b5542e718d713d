import fs from 'node:fs';
import path from 'node:path';
import sharp from 'sharp';
import { describe, expect, it } from 'vitest';
import { loadTensorflow } from '../../tf/tensorflow.js';
import {
  confusionMatrixPng,
  evaluateModel,
  flattenMetrics,
  scoreConfusion,
} from '../../training/evaluation.js';
import { tempDir } from '../helpers/fixtures.js';
import { syntheticDataset } from '../helpers/synthetic-dataset.js';

describe('evaluation', () => {
  it('scores a hand-made confusion matrix', () => {
    // rows: true cat, dog, wild; columns: predicted
    const matrix = [
      [8, 2, 0],
      [1, 6, 3],
      [0, 0, 5],
    ];
    const s = scoreConfusion(matrix, ['cat', 'dog', 'wild']);
    expect(s.accuracy).toBeCloseTo(19 / 25, 10);
    const [cat, dog, wild] = s.perClass;
    expect(cat).toMatchObject({ label: 'cat', support: 10, precision: 8 / 9, recall: 0.8 });
    expect(cat!.f1).toBeCloseTo((2 * (8 / 9) * 0.8) / (8 / 9 + 0.8), 10);
    expect(dog).toMatchObject({ support: 10, precision: 0.75, recall: 0.6 });
    expect(wild).toMatchObject({ support: 5, precision: 5 / 8, recall: 1 });
    expect(s.macroRecall).toBeCloseTo((0.8 + 0.6 + 1) / 3, 10);
    expect(s.macroPrecision).toBeCloseTo((8 / 9 + 0.75 + 5 / 8) / 3, 10);
    expect(s.confusionMatrix).toEqual(matrix);
    expect(flattenMetrics({ ...s, loss: 0.5 })).toMatchObject({
      val_loss: 0.5,
      val_accuracy: 0.76,
      val_recall_dog: 0.6,
      val_precision_wild: 0.625,
    });
  });

  it('gives 0, not NaN, for a class never predicted or never seen', () => {
    const s = scoreConfusion(
      [
        [3, 0],
        [0, 0],
      ],
      ['a', 'b'],
    );
    expect(s.perClass[1]).toEqual({ label: 'b', precision: 0, recall: 0, f1: 0, support: 0 });
    expect(s.accuracy).toBe(1);
  });

  it('evaluates a model over a dataset: counts add up, tensors are released', async () => {
    const tf = await loadTensorflow();
    const model = tf.sequential({
      layers: [
        tf.layers.flatten({ inputShape: [4, 4, 3] }),
        tf.layers.dense({ units: 3, activation: 'softmax' }),
      ],
    });
    const data = syntheticDataset({ perClass: [5, 3, 2], size: 4, batchSize: 4, shuffle: false });
    const before = tf.memory().numTensors;
    const m = await evaluateModel(tf, model, data);
    expect(tf.memory().numTensors).toBe(before);
    expect(m.confusionMatrix.map((row) => row.reduce((a, b) => a + b, 0))).toEqual([5, 3, 2]);
    expect(m.loss).toBeGreaterThan(0);
    model.dispose();
  });

  it('counts the regularizer penalty in the loss, as training does and Keras’s val_loss does', async () => {
    const tf = await loadTensorflow();
    const build = (regularized: boolean) =>
      tf.sequential({
        layers: [
          tf.layers.flatten({ inputShape: [4, 4, 3] }),
          tf.layers.dense({
            units: 3,
            activation: 'softmax',
            kernelInitializer: tf.initializers.constant({ value: 0.1 }),
            ...(regularized && { kernelRegularizer: tf.regularizers.l2({ l2: 0.5 }) }),
          }),
        ],
      });
    const data = syntheticDataset({ perClass: [5, 3, 2], size: 4, batchSize: 4, shuffle: false });
    const [plain, regularized] = [build(false), build(true)];
    const before = tf.memory().numTensors;
    const withPenalty = await evaluateModel(tf, regularized, data);
    const without = await evaluateModel(tf, plain, data);
    expect(tf.memory().numTensors).toBe(before);
    // 0.5 × Σ w² over 48 × 3 kernel weights of 0.1.
    expect(withPenalty.loss - without.loss).toBeCloseTo(0.5 * 48 * 3 * 0.01, 4);
    expect(withPenalty.accuracy).toBe(without.accuracy);
    plain.dispose();
    regularized.dispose();
  });

  it('renders the confusion matrix as a PNG heat map', async () => {
    const png = await confusionMatrixPng(
      [
        [40, 3, 2],
        [5, 30, 0],
        [1, 0, 44],
      ],
      ['cat', 'dog', 'wild <&>'],
    );
    const meta = await sharp(png).metadata();
    expect(meta.format).toBe('png');
    expect(meta.width).toBeGreaterThan(300);
    // The top-left cell (cat→cat, 89%) is dark, the cat→wild cell (4%) nearly white.
    const cell = async (row: number, col: number) => {
      const { data } = await sharp(png)
        .extract({ left: 120 + col * 72 + 4, top: 70 + row * 72 + 4, width: 4, height: 4 })
        .raw()
        .toBuffer({ resolveWithObject: true });
      return data[0]!;
    };
    expect(await cell(0, 0)).toBeLessThan(80);
    expect(await cell(0, 2)).toBeGreaterThan(220);
    if (process.env.MENAGERIE_KEEP_PNG) {
      const t = tempDir('menagerie-cm-');
      fs.writeFileSync(path.join(t.dir, 'confusion_matrix.png'), png);
      console.log(path.join(t.dir, 'confusion_matrix.png'));
    }
  });
});
