import { describe, expect, it } from 'vitest';
import { loadTensorflow } from '../../tf/tensorflow.js';
import type * as TfNode from '@tensorflow/tfjs-node';
import { createFastAdam, installFastKernels, oneDnnSupport } from '../../tf/fast-kernels.js';

const tf = await loadTensorflow();

/** conv(relu, fused) → pool on an odd size (slice + pad path) → conv → pool → dense(relu) → dense. */
function gradientsOfSmallCnn(): number[][] {
  return tf.tidy(() => {
    const random = (shape: number[], seed: number) =>
      tf.randomNormal(shape, 0, 0.5, 'float32', seed);
    const x = random([4, 13, 13, 3], 1);
    const filter1 = tf.variable(random([3, 3, 3, 8], 2));
    const filter2 = tf.variable(random([3, 3, 8, 8], 3));
    const dense = tf.variable(random([8, 5], 4));
    const loss = () =>
      tf.tidy(() => {
        let h = tf.fused.conv2d({
          x: x as TfNode.Tensor4D,
          filter: filter1 as TfNode.Variable<TfNode.Rank.R4>,
          strides: 1,
          pad: 'valid',
          activation: 'relu',
        });
        h = tf.maxPool(h, 2, 2, 'valid');
        h = tf.relu(tf.conv2d(h, filter2 as TfNode.Variable<TfNode.Rank.R4>, 1, 'same'));
        h = tf.maxPool(h, 2, 2, 'valid');
        const flat = tf.reshape(h, [4, -1]).slice([0, 0], [4, 8]);
        return tf.fused
          .matMul({ a: flat, b: dense, activation: 'relu' })
          .square()
          .sum() as TfNode.Scalar;
      });
    const { grads } = tf.variableGrads(loss, [filter1, filter2, dense]);
    const values = Object.values(grads).map((g) => Array.from(g.dataSync()));
    tf.dispose([filter1, filter2, dense]);
    return values;
  });
}

describe('installFastKernels', () => {
  it('gives the same gradients as tfjs for relu, fused relu and 2×2 max pooling', () => {
    const reference = gradientsOfSmallCnn();
    const uninstall = installFastKernels(tf);
    try {
      const fast = gradientsOfSmallCnn();
      expect(fast).toHaveLength(reference.length);
      fast.forEach((values, i) => {
        const expected = reference[i]!;
        expect(values.some((v) => v !== 0)).toBe(true);
        values.forEach((v, j) => expect(v).toBeCloseTo(expected[j]!, 4));
      });
    } finally {
      uninstall();
    }
  });

  it('keeps tfjs semantics for step with alpha and for overlapping pools', () => {
    const uninstall = installFastKernels(tf);
    try {
      expect(Array.from(tf.step(tf.tensor1d([-2, 0, 3]), 0.5).dataSync())).toEqual([0.5, 0.5, 1]);
      const x = tf.tensor4d([1, 5, 2, 4, 3, 9, 0, 8, 7], [1, 3, 3, 1]);
      const grad = tf.grad((t) => tf.maxPool(t as TfNode.Tensor4D, 2, 1, 'valid').sum())(x);
      expect(Array.from(grad.dataSync())).toEqual([0, 1, 0, 0, 0, 2, 0, 1, 0]);
    } finally {
      uninstall();
    }
  });
});

describe('installFastKernels, oneDNN kernels', () => {
  /** The same function under tfjs's kernels and under ours: values and input gradients. */
  function bothWays(f: (x: TfNode.Tensor4D) => TfNode.Tensor, x: TfNode.Tensor4D) {
    const run = () =>
      tf.tidy(() => {
        const y = f(x);
        const dy = tf.randomNormal(y.shape, 0, 1, 'float32', 7);
        const grad = tf.grad((t: TfNode.Tensor) =>
          f(t as TfNode.Tensor4D)
            .mul(dy)
            .sum(),
        )(x);
        return { y: Array.from(y.dataSync()), grad: Array.from(grad.dataSync()) };
      });
    const stock = run();
    const uninstall = installFastKernels(tf);
    try {
      return { stock, fast: run() };
    } finally {
      uninstall();
    }
  }

  it('are available in the libtensorflow Menagerie sets up', () => {
    expect(oneDnnSupport(tf)).toEqual({ pool: true, conv: true });
  });

  it.each([
    ['2×2 valid, odd input', 2, 2, 'valid' as const, 13],
    ['3×3 stride 2 same (overlapping windows)', 3, 2, 'same' as const, 9],
    ['2×2 stride 1 valid', 2, 1, 'valid' as const, 6],
  ])('max pool %s: the same outputs and gradients as tfjs', (_name, size, stride, pad, side) => {
    const x = tf.randomNormal([2, side, side, 3], 0, 1, 'float32', 3) as TfNode.Tensor4D;
    const { stock, fast } = bothWays((t) => tf.maxPool(t, size, stride, pad), x);
    expect(fast.y).toEqual(stock.y);
    fast.grad.forEach((v, i) => expect(v).toBeCloseTo(stock.grad[i]!, 5));
    x.dispose();
  });

  it('max pool with tied maxima gives each window’s gradient to one of them', () => {
    // Which maximum gets it is a convention (zeros after a ReLU: the ReLU then drops it).
    const x = tf.zeros([1, 4, 4, 1]) as TfNode.Tensor4D;
    const { stock, fast } = bothWays((t) => tf.maxPool(t, 2, 2, 'valid'), x);
    const total = (values: number[]) => values.reduce((a, b) => a + b, 0);
    expect(fast.grad.filter((v) => v !== 0)).toHaveLength(4);
    expect(total(fast.grad)).toBeCloseTo(total(stock.grad), 5);
    x.dispose();
  });

  it.each(['relu', 'linear'] as const)(
    'fused conv2d with bias and %s: the same outputs and gradients as tfjs',
    (activation) => {
      const x = tf.randomNormal([2, 9, 9, 3], 0, 1, 'float32', 11) as TfNode.Tensor4D;
      const filter = tf.randomNormal([3, 3, 3, 4], 0, 0.5, 'float32', 12) as TfNode.Tensor4D;
      const bias = tf.tensor1d([0.1, -0.2, 0.3, 0]);
      for (const pad of ['valid', 'same'] as const) {
        const { stock, fast } = bothWays(
          (t) => tf.fused.conv2d({ x: t, filter, bias, strides: 1, pad, activation }),
          x,
        );
        fast.y.forEach((v, i) => expect(v).toBeCloseTo(stock.y[i]!, 5));
        fast.grad.forEach((v, i) => expect(v).toBeCloseTo(stock.grad[i]!, 5));
      }
      tf.dispose([x, filter, bias]);
    },
  );

  it('sums over all but the last axis as tfjs does, and leaves other sums alone', () => {
    const x = tf.randomNormal([3, 4, 5, 6], 0, 1, 'float32', 13);
    const sums = () =>
      tf.tidy(() =>
        [tf.sum(x, [0, 1, 2]), tf.sum(x.reshape([60, 6]), 0), tf.sum(x, [1, 2]), tf.sum(x)].map(
          (t) => Array.from(t.dataSync()),
        ),
      );
    const stock = sums();
    const uninstall = installFastKernels(tf);
    try {
      sums().forEach((values, i) =>
        values.forEach((v, j) => expect(v).toBeCloseTo(stock[i]![j]!, 4)),
      );
    } finally {
      uninstall();
      x.dispose();
    }
  });
});

describe('createFastAdam', () => {
  it('follows the Keras Adam update and leaks no tensor across steps', () => {
    const w = tf.variable(tf.tensor1d([1, -2, 3]));
    const optimizer = createFastAdam(tf, { learningRate: 0.1 });
    // Keras 3 Adam, by hand: m, v moments; alpha = lr·sqrt(1-β2^t)/(1-β1^t).
    let m = [0, 0, 0];
    let v = [0, 0, 0];
    let expected = [1, -2, 3];
    let tensors = 0;
    for (let t = 1; t <= 5; t++) {
      optimizer.minimize(() => w.square().sum() as TfNode.Scalar);
      const g = expected.map((value) => 2 * value);
      m = m.map((mi, i) => mi + (g[i]! - mi) * 0.1);
      v = v.map((vi, i) => vi + (g[i]! ** 2 - vi) * 0.001);
      const alpha = (0.1 * Math.sqrt(1 - 0.999 ** t)) / (1 - 0.9 ** t);
      expected = expected.map((value, i) => value - (m[i]! * alpha) / (Math.sqrt(v[i]!) + 1e-7));
      if (t === 2) tensors = tf.memory().numTensors;
    }
    Array.from(w.dataSync()).forEach((value, i) => expect(value).toBeCloseTo(expected[i]!, 5));
    expect(tf.memory().numTensors).toBe(tensors);
    optimizer.dispose();
    w.dispose();
  });
});
