import { describe, expect, it } from 'vitest';
import type * as TfNode from '@tensorflow/tfjs-node';
import { loadTensorflow } from '../../tf/tensorflow.js';
import { fastPredictor, tappedPredictor } from '../../tf/native-predictor.js';

const tf = await loadTensorflow();

function expectSameOutputs(model: TfNode.LayersModel, x: TfNode.Tensor, native: boolean) {
  const predict = fastPredictor(tf, model);
  expect(predict.native).toBe(native);
  const [expected, actual] = tf.tidy(() => [
    Array.from((model.predict(x) as TfNode.Tensor).dataSync()),
    Array.from(predict(x).dataSync()),
  ]);
  expect(actual).toHaveLength(expected!.length);
  actual!.forEach((v, i) => expect(v).toBeCloseTo(expected![i]!, 5));
}

/** conv(relu)-pool-conv(linear, same)-pool(3, stride 2, same)-activation-flatten-dense-dropout-dense. */
function smallCnn(extra: TfNode.layers.Layer[] = []): TfNode.Sequential {
  const seed = (s: number) => ({ kernelInitializer: tf.initializers.glorotUniform({ seed: s }) });
  const biasInit = { biasInitializer: tf.initializers.randomNormal({ seed: 9 }) };
  const model = tf.sequential();
  model.add(
    tf.layers.conv2d({
      inputShape: [13, 13, 3],
      filters: 4,
      kernelSize: 3,
      activation: 'relu',
      ...seed(1),
      ...biasInit,
    }),
  );
  model.add(tf.layers.maxPooling2d({ poolSize: 2 }));
  model.add(
    tf.layers.conv2d({ filters: 5, kernelSize: 3, padding: 'same', ...seed(2), ...biasInit }),
  );
  model.add(tf.layers.maxPooling2d({ poolSize: 3, strides: 2, padding: 'same' }));
  model.add(tf.layers.activation({ activation: 'relu' }));
  for (const layer of extra) model.add(layer);
  model.add(tf.layers.flatten());
  model.add(
    tf.layers.dense({ units: 8, activation: 'relu', name: 'embedding', ...seed(3), ...biasInit }),
  );
  model.add(tf.layers.dropout({ rate: 0.5 }));
  model.add(tf.layers.dense({ units: 3, activation: 'softmax', ...seed(4) }));
  return model;
}

describe('fastPredictor', () => {
  const x = tf.randomNormal([4, 13, 13, 3], 0, 1, 'float32', 5);

  it('gives model.predict’s outputs through native ops', () => {
    const model = smallCnn();
    expectSameOutputs(model, x, true);
    model.dispose();
  });

  it('follows setWeights and leaks no tensor', () => {
    const model = smallCnn();
    const predict = fastPredictor(tf, model);
    model.setWeights(model.getWeights().map((w) => tf.tidy(() => w.mul(0.5))));
    const before = tf.memory().numTensors;
    expectSameOutputs(model, x, true);
    tf.tidy(() => {
      predict(x);
    });
    expect(tf.memory().numTensors).toBe(before);
    model.dispose();
  });

  it('falls back to model.predict for layers it does not know', () => {
    const model = smallCnn([tf.layers.batchNormalization()]);
    expectSameOutputs(model, x, false);
    model.dispose();
  });

  it('also gives the outputs of named layers, as a two-output model does', () => {
    const model = smallCnn();
    const both = tf.model({
      inputs: model.inputs,
      outputs: [model.outputs[0]!, model.getLayer('embedding').output as TfNode.SymbolicTensor],
    });
    const run = tappedPredictor(tf, model, ['embedding', model.layers[2]!.name]);
    expect(run).toBeDefined();
    const before = tf.memory().numTensors;
    const [expected, actual] = tf.tidy(() => [
      (both.predict(x) as TfNode.Tensor[]).map((t) => Array.from(t.dataSync())),
      run!(x).map((t) => Array.from(t.dataSync())),
    ]);
    expect(tf.memory().numTensors).toBe(before);
    expect(actual).toHaveLength(3);
    for (const [k, want] of expected!.entries()) {
      expect(actual![k]).toHaveLength(want.length);
      actual![k]!.forEach((v, i) => expect(v).toBeCloseTo(want[i]!, 5));
    }
    // The second conv's output (linear, before its pool) is there too.
    expect(actual![2]).toHaveLength(4 * 5 * 5 * 5);
    model.dispose();
  });

  it('gives up on a layer whose output is fused away, or one it does not know', () => {
    const model = smallCnn();
    // The first conv's ReLU runs after its pool: its own output never exists.
    expect(tappedPredictor(tf, model, [model.layers[0]!.name])).toBeUndefined();
    expect(tappedPredictor(tf, model, ['no-such-layer'])).toBeUndefined();
    const unknown = smallCnn([tf.layers.batchNormalization()]);
    expect(tappedPredictor(tf, unknown, ['embedding'])).toBeUndefined();
    model.dispose();
    unknown.dispose();
  });
});
