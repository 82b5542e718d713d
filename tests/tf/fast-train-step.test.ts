import { describe, expect, it } from 'vitest';
import type * as TfNode from '@tensorflow/tfjs-node';
import { loadTensorflow } from '../../tf/tensorflow.js';
import { fastTrainStep } from '../../tf/fast-train-step.js';
import { createFastOptimizer } from '../../tf/fast-optimizer.js';

const tf = await loadTensorflow();

/** An optimizer that keeps a copy of the gradients it is given and changes nothing. */
class Capture extends tf.Optimizer {
  static get className(): string {
    return 'MenagerieCapture';
  }
  grads = new Map<string, number[]>();
  override applyGradients(
    gradients: TfNode.NamedTensorMap | { name: string; tensor: TfNode.Tensor }[],
  ) {
    const named = Array.isArray(gradients)
      ? gradients.map(({ name, tensor }) => [name, tensor] as const)
      : Object.entries(gradients);
    for (const [name, g] of named) this.grads.set(name, Array.from(g.dataSync()));
  }
  override getConfig(): TfNode.serialization.ConfigDict {
    return {};
  }
}

/** What the dense layers carry besides their weights. */
interface DenseExtras {
  kernelRegularizer?: ReturnType<typeof tf.regularizers.l2>;
  biasRegularizer?: ReturnType<typeof tf.regularizers.l2>;
  kernelConstraint?: ReturnType<typeof tf.constraints.nonNeg>;
}

function smallCnn(
  dropout: number,
  extra: TfNode.layers.Layer[] = [],
  dense: DenseExtras = {},
): TfNode.Sequential {
  const seed = (s: number) => ({
    kernelInitializer: tf.initializers.glorotUniform({ seed: s }),
    biasInitializer: tf.initializers.randomNormal({ seed: s + 10, stddev: 0.1 }),
  });
  const model = tf.sequential();
  model.add(
    tf.layers.conv2d({
      inputShape: [13, 13, 3],
      filters: 4,
      kernelSize: 3,
      activation: 'relu',
      ...seed(1),
    }),
  );
  model.add(tf.layers.maxPooling2d({ poolSize: 2 }));
  model.add(tf.layers.conv2d({ filters: 5, kernelSize: 3, padding: 'same', ...seed(2) }));
  model.add(tf.layers.maxPooling2d({ poolSize: 3, strides: 2, padding: 'same' }));
  model.add(tf.layers.activation({ activation: 'relu' }));
  for (const layer of extra) model.add(layer);
  model.add(tf.layers.flatten());
  model.add(tf.layers.dense({ units: 8, activation: 'relu', ...seed(3), ...dense }));
  model.add(tf.layers.dropout({ rate: dropout }));
  model.add(tf.layers.dense({ units: 3, activation: 'softmax', ...seed(4), ...dense }));
  return model;
}

const LABELS = [0, 1, 2, 2, 1, 0];
const xs = tf.randomNormal([6, 13, 13, 3], 0, 1, 'float32', 5);
const ys = tf.oneHot(tf.tensor1d(LABELS, 'int32'), 3).cast('float32');
const weights = tf.tensor1d([1, 2, 0.5, 1, 1, 3]);

/** Runs `fn` with Math.random a fixed stream: tfjs seeds unseeded random ops from it. */
function withSeededRandom<T>(fn: () => T): T {
  const random = Math.random;
  let state = 42;
  Math.random = () => ((state = (state * 16807) % 2147483647) - 1) / 2147483646;
  try {
    return fn();
  } finally {
    Math.random = random;
  }
}

/** Examples whose most probable class is their label, counted in plain JavaScript. */
function countCorrect(probs: TfNode.Tensor): number {
  const [n, classes] = probs.shape as [number, number];
  const values = probs.dataSync();
  let correct = 0;
  for (let i = 0; i < n; i++) {
    const row = Array.from(values.subarray(i * classes, (i + 1) * classes));
    if (row.indexOf(Math.max(...row)) === LABELS[i]) correct++;
  }
  return correct;
}

/**
 * tfjs's own gradients of the mean (weighted) cross-entropy of the model's softmax, and how
 * many examples that forward pass classified right.
 */
function tapeGradients(model: TfNode.LayersModel, exampleWeights?: TfNode.Tensor) {
  const variables = model.trainableWeights.map((w) => w.read() as TfNode.Variable);
  let correct = -1;
  const { value, grads } = tf.variableGrads(() => {
    const probs = model.apply(xs, { training: true }) as TfNode.Tensor;
    correct = countCorrect(probs);
    const perExample = tf.neg(tf.sum(tf.mul(ys, tf.log(probs)), -1));
    const weighted = exampleWeights ? tf.mul(perExample, exampleWeights) : perExample;
    return tf.mean(weighted) as TfNode.Scalar;
  }, variables);
  const result = {
    loss: value.dataSync()[0]!,
    correct,
    grads: new Map(Object.entries(grads).map(([name, g]) => [name, Array.from(g.dataSync())])),
  };
  tf.dispose([value, ...Object.values(grads)]);
  return result;
}

describe('fastTrainStep', () => {
  it.each([
    ['no dropout, unweighted', 0, false],
    ['no dropout, example weights', 0, true],
    ['dropout 0.5 (the same masks from the same random stream)', 0.5, false],
  ] as const)('gives tfjs’s loss and gradients through native ops: %s', (_name, rate, weighted) => {
    const model = smallCnn(rate);
    const exampleWeights = weighted ? weights : undefined;
    const expected = withSeededRandom(() => tapeGradients(model, exampleWeights));
    const capture = new Capture();
    const step = fastTrainStep(tf, model, capture);
    expect(step.native).toBe(true);
    const { loss, correct } = withSeededRandom(() => step(xs, ys, exampleWeights));
    expect(loss.dataSync()[0]).toBeCloseTo(expected.loss, 5);
    // Counted on the forward pass before the update, as the tape's was.
    expect(correct.dataSync()[0]).toBe(expected.correct);
    expect([...capture.grads.keys()].sort()).toEqual([...expected.grads.keys()].sort());
    for (const [name, grad] of expected.grads) {
      const actual = capture.grads.get(name)!;
      expect(grad.some((v) => v !== 0)).toBe(true);
      actual.forEach((v, i) => expect(v).toBeCloseTo(grad[i]!, 5));
    }
    tf.dispose([loss, correct]);
    model.dispose();
  });

  it('trains with dropout, lowers the loss, and leaks no tensor', () => {
    const model = smallCnn(0.5);
    const step = fastTrainStep(tf, model, tf.train.adam(0.01));
    expect(step.native).toBe(true);
    const losses: number[] = [];
    let tensors = 0;
    // tfjs seeds unseeded random ops from Math.random: a fixed stream, fixed dropout masks.
    const random = Math.random;
    let state = 42;
    Math.random = () => ((state = (state * 16807) % 2147483647) - 1) / 2147483646;
    for (let i = 0; i < 40; i++) {
      const { loss, correct } = step(xs, ys);
      losses.push(loss.dataSync()[0]!);
      tf.dispose([loss, correct]);
      if (i === 1) tensors = tf.memory().numTensors;
    }
    Math.random = random;
    expect(tf.memory().numTensors).toBe(tensors);
    // Dropout makes each step's loss noisy: compare the last five with the first two.
    const mean = (values: number[]) => values.reduce((a, b) => a + b, 0) / values.length;
    expect(mean(losses.slice(-5))).toBeLessThan(mean(losses.slice(0, 2)) * 0.8);
    model.dispose();
  });

  it('skips frozen layers and trains the rest', () => {
    const model = smallCnn(0);
    model.layers[0]!.trainable = false;
    const capture = new Capture();
    fastTrainStep(tf, model, capture)(xs, ys);
    const frozen = model.layers[0]!.weights.map((w) => (w.read() as TfNode.Variable).name);
    expect(frozen.some((name) => capture.grads.has(name))).toBe(false);
    expect(capture.grads.size).toBe(model.trainableWeights.length);
    model.dispose();
  });

  it('falls back to optimizer.minimize for layers it does not know', () => {
    const model = smallCnn(0, [tf.layers.batchNormalization()]);
    const step = fastTrainStep(tf, model, tf.train.sgd(0.1));
    expect(step.native).toBe(false);
    const expected = tf.tidy(() =>
      countCorrect(model.apply(xs, { training: true }) as TfNode.Tensor),
    );
    const { loss, correct } = step(xs, ys);
    expect(Number.isFinite(loss.dataSync()[0])).toBe(true);
    expect(correct.dataSync()[0]).toBe(expected);
    tf.dispose([loss, correct]);
    model.dispose();
  });
});

describe('fastTrainStep against model.fit', () => {
  const STEPS = 8;
  const LR = 0.05;

  /** `STEPS` losses of `model.fit` (SGD, the whole batch each epoch): the reference. */
  async function fitLosses(model: TfNode.LayersModel): Promise<number[]> {
    const optimizer = tf.train.sgd(LR);
    model.compile({ optimizer, loss: 'categoricalCrossentropy' });
    const history = await model.fit(xs, ys, {
      epochs: STEPS,
      batchSize: LABELS.length,
      shuffle: false,
      verbose: 0,
    });
    optimizer.dispose();
    return history.history.loss as number[];
  }

  /** `STEPS` losses of fastTrainStep with the fused SGD; each is the loss before its update. */
  function stepLosses(model: TfNode.LayersModel, native: boolean): number[] {
    const optimizer = createFastOptimizer(tf, 'sgd', { learningRate: LR });
    const step = fastTrainStep(tf, model, optimizer, { native });
    expect(step.native).toBe(native);
    const losses: number[] = [];
    for (let i = 0; i < STEPS; i++) {
      const { loss, correct } = step(xs, ys);
      losses.push(loss.dataSync()[0]!);
      tf.dispose([loss, correct]);
    }
    optimizer.dispose();
    return losses;
  }

  it.each([
    ['no regularizer', {}],
    [
      'an L2 regularizer on the dense kernels',
      { kernelRegularizer: tf.regularizers.l2({ l2: 0.5 }) },
    ],
    [
      'L1L2 on the dense kernels and L2 on their biases',
      {
        kernelRegularizer: tf.regularizers.l1l2({ l1: 0.01, l2: 0.2 }),
        biasRegularizer: tf.regularizers.l2({ l2: 1 }),
      },
    ],
  ] as const)(
    'the native and the tape path follow model.fit’s loss trajectory: %s',
    async (_name, dense: DenseExtras) => {
      const before = tf.memory().numTensors;
      const reference = smallCnn(0, [], dense);
      const expected = await fitLosses(reference);
      reference.dispose();
      for (const native of [true, false]) {
        const model = smallCnn(0, [], dense);
        const actual = stepLosses(model, native);
        model.dispose();
        actual.forEach((loss, i) =>
          expect(loss, `${native} step ${i}`).toBeCloseTo(expected[i]!, 3),
        );
      }
      expect(expected.at(-1)).toBeLessThan(expected[0]!);
      if (dense.kernelRegularizer) {
        // The penalty is a large part of the loss: the trajectory without it is another one.
        const plain = smallCnn(0);
        const unregularized = stepLosses(plain, true);
        plain.dispose();
        expect(expected[0]! - unregularized[0]!).toBeGreaterThan(0.1);
      }
      expect(tf.memory().numTensors).toBe(before);
    },
  );

  it('the tape path takes the loss on the logits, as the native path does, also when saturated', () => {
    // Logits this large put some labels' probabilities under 1e-7, where a clipped
    // probability's loss is flat (16.1, no gradient) and the logits' keeps growing.
    const saturated = () => {
      const model = smallCnn(0);
      const last = model.layers.at(-1)!;
      last.setWeights(last.getWeights().map((w) => tf.mul(w, 40)));
      return model;
    };
    const [native, tape] = [true, false].map((native) => {
      const model = saturated();
      const losses = stepLosses(model, native);
      model.dispose();
      return losses;
    });
    expect(native![0]).toBeGreaterThan(20);
    tape!.forEach((loss, i) =>
      expect(Math.abs(loss - native![i]!)).toBeLessThan(1e-4 * native![i]! + 1e-3),
    );
  });

  it('applies constraints after each update on both paths, alike', () => {
    const trained = [true, false].map((native) => {
      const model = smallCnn(0, [], { kernelConstraint: tf.constraints.nonNeg() });
      const losses = stepLosses(model, native);
      const kernels = [model.layers.at(-3)!, model.layers.at(-1)!].map((layer) =>
        Array.from(layer.getWeights()[0]!.dataSync()),
      );
      model.dispose();
      return { losses, kernels };
    });
    for (const { kernels } of trained) {
      for (const kernel of kernels) expect(Math.min(...kernel)).toBeGreaterThanOrEqual(0);
    }
    trained[1]!.losses.forEach((loss, i) => expect(loss).toBeCloseTo(trained[0]!.losses[i]!, 4));
  });
});
