import { describe, expect, it } from 'vitest';
import type * as TfNode from '@tensorflow/tfjs-node';
import { loadTensorflow } from '../../tf/tensorflow.js';
import { createFastOptimizer } from '../../tf/fast-optimizer.js';

const tf = await loadTensorflow();

/** Five minimize steps of a quadratic on a fresh variable; its final values. */
function descend(optimizer: TfNode.Optimizer, start = [1, -2, 3, 0.5]): number[] {
  const w = tf.variable(tf.tensor1d(start));
  const target = tf.tensor1d([0.3, 0.1, -0.4, 2]);
  for (let t = 0; t < 5; t++) {
    optimizer.minimize(() => w.sub(target).square().sum().mul(1.5) as TfNode.Scalar);
  }
  const values = Array.from(w.dataSync());
  tf.dispose([w, target]);
  return values;
}

describe('createFastOptimizer', () => {
  it.each([
    ['sgd', () => tf.train.sgd(0.05)],
    ['rmsprop', () => tf.train.rmsprop(0.05)],
  ] as const)('%s follows tfjs’s own update', (kind, stock) => {
    const reference = stock();
    const expected = descend(reference);
    reference.dispose();
    const fast = createFastOptimizer(tf, kind, { learningRate: 0.05 });
    const actual = descend(fast);
    fast.dispose();
    actual.forEach((value, i) => expect(value).toBeCloseTo(expected[i]!, 5));
  });

  it('notices a variable assigned between steps and reads the learning rate every step', () => {
    const w = tf.variable(tf.tensor1d([1, 1]));
    const optimizer = createFastOptimizer(tf, 'sgd', { learningRate: 0.5 });
    const step = () => optimizer.minimize(() => w.sum() as TfNode.Scalar);
    step(); // 1 - 0.5
    expect(Array.from(w.dataSync())).toEqual([0.5, 0.5]);
    tf.tidy(() => w.assign(tf.tensor1d([10, 20]))); // as restoring the best epoch's weights does
    optimizer.learningRate = 1;
    step();
    expect(Array.from(w.dataSync())).toEqual([9, 19]);
    optimizer.dispose();
    w.dispose();
  });

  it('saves and restores its slots, and leaks no tensor across steps or after dispose', async () => {
    const w = tf.variable(tf.tensor1d([1, -2, 3]));
    const before = tf.memory().numTensors;
    const first = createFastOptimizer(tf, 'adam', { learningRate: 0.1 });
    const loss = () => w.square().sum() as TfNode.Scalar;
    first.minimize(loss);
    first.minimize(loss);
    const afterTwo = tf.memory().numTensors;
    first.minimize(loss);
    expect(tf.memory().numTensors).toBe(afterTwo);
    const saved = await first.getWeights();
    expect(saved.map((s) => s.name)).toEqual(['iter', `${w.name}/m`, `${w.name}/v`]);
    const restart = Array.from(w.dataSync());

    // Continue with the original, and with a second optimizer restored from the save.
    first.minimize(loss);
    const continued = Array.from(w.dataSync());
    tf.tidy(() => w.assign(tf.tensor1d(restart)));
    const second = createFastOptimizer(tf, 'adam', { learningRate: 0.1 });
    await second.setWeights(saved);
    second.minimize(loss);
    Array.from(w.dataSync()).forEach((value, i) => expect(value).toBeCloseTo(continued[i]!, 6));

    tf.dispose(saved.map((s) => s.tensor));
    first.dispose();
    second.dispose();
    expect(tf.memory().numTensors).toBe(before);
    w.dispose();
  });

  it('refuses gradients that do not fit their variables before writing any of them', () => {
    const a = tf.variable(tf.tensor1d([1, 2, 3]));
    const b = tf.variable(tf.tensor2d([[1, 2]]));
    const optimizer = createFastOptimizer(tf, 'adam', { learningRate: 0.1 });
    const good = tf.ones([3]);
    for (const [bad, message] of [
      [tf.ones([2, 1]), /gradient of .* shape \[2,1\]; the variable has float32 and \[1,2\]/],
      [tf.ones([1, 2], 'int32'), /dtype int32 .*the variable has float32/],
    ] as const) {
      // a first: a per-variable loop would have updated it before reaching b.
      expect(() => optimizer.applyGradients({ [a.name]: good, [b.name]: bad })).toThrow(message);
      bad.dispose();
    }
    expect(() => optimizer.applyGradients({ nope: good })).toThrow(/no variable named nope/);
    expect(Array.from(a.dataSync())).toEqual([1, 2, 3]);
    expect(Array.from(b.dataSync())).toEqual([1, 2]);
    expect(optimizer.iterations).toBe(0);
    optimizer.applyGradients({ [a.name]: good });
    expect(a.dataSync()[0]).toBeCloseTo(0.9, 5);
    tf.dispose([a, b, good]);
    optimizer.dispose();
  });

  it('leaves the weights as they were when the fused update itself fails', async () => {
    const w = tf.variable(tf.tensor1d([1, -2, 3]));
    const optimizer = createFastOptimizer(tf, 'adam', { learningRate: 0.1 });
    const loss = () => w.square().sum() as TfNode.Scalar;
    optimizer.minimize(loss);
    const before = Array.from(w.dataSync());
    // Slots restored from another model's optimizer: TensorFlow's Adam refuses m and v of
    // another shape than the variable, after the step has started.
    const m = tf.zeros([4]);
    const v = tf.zeros([4]);
    await optimizer.setWeights([
      { name: 'iter', tensor: tf.scalar(1) },
      { name: `${w.name}/m`, tensor: m },
      { name: `${w.name}/v`, tensor: v },
    ]);
    const tensors = tf.memory().numTensors;
    expect(() => optimizer.minimize(loss)).toThrow();
    expect(Array.from(w.dataSync())).toEqual(before);
    expect(tf.memory().numTensors).toBe(tensors);
    tf.dispose([w, m, v]);
    optimizer.dispose();
  });
});
