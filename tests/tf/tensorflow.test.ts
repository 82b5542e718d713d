import { describe, expect, it } from 'vitest';
import { loadTensorflow, tensorflowVersion } from '../../tf/tensorflow.js';

describe('TensorFlow', () => {
  it('runs on the native tensorflow backend, never the pure-JS one', async () => {
    const tf = await loadTensorflow();
    expect(tf.getBackend()).toBe('tensorflow');
    expect(await tensorflowVersion()).toMatch(/^2\.\d+\.\d+/);
    const sum = tf.tidy(
      () =>
        tf
          .ones([4, 4])
          .matMul(tf.ones([4, 4]))
          .sum()
          .dataSync()[0],
    );
    expect(sum).toBe(64);
  });
});
