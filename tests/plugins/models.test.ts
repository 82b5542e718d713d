import type * as TfNode from '@tensorflow/tfjs-node';
import { describe, expect, it } from 'vitest';
import { loadTensorflow } from '../../tf/tensorflow.js';
import { builtinPlugins } from '../../plugins/builtins.js';
import { cnnModel } from '../../plugins/models/cnn.js';
import { transferModel } from '../../plugins/models/transfer.js';
import { createPluginRegistry } from '../../plugin-api/plugin-registry.js';
import type { ModelPlugin } from '../../plugin-api/plugin.js';
import { HyperParameters } from '../../plugin-api/hyperparameters.js';

const tf = await loadTensorflow();
const labels = ['cat', 'dog', 'wild'];

const PLUGINS = createPluginRegistry(builtinPlugins());

/** The feature size a backbone model's head is built for; undefined for a pixel model. */
function featureSizeOf(plugin: ModelPlugin, hp: HyperParameters): number | undefined {
  const use = plugin.backbone?.(hp);
  if (!use) return undefined;
  const backbone =
    typeof use.backbone === 'string' ? PLUGINS.get('backbone', use.backbone) : use.backbone;
  return backbone.featureSize;
}

describe('built-in model plugins', () => {
  it('registers cnn and transfer among the built-ins, and the packaged backbones', () => {
    const names = (kind: string) =>
      builtinPlugins()
        .filter((p) => p.kind === kind)
        .map((p) => p.name);
    expect(names('model')).toEqual(['menagerie:cnn', 'menagerie:transfer']);
    expect(names('backbone')).toEqual(['menagerie:mobilenet_v2_140', 'menagerie:mobilenet_v2']);
  });

  // The same contract for every model plugin.
  const contract: [string, () => ModelPlugin][] = [
    ['menagerie:cnn', cnnModel],
    ['menagerie:transfer', transferModel],
  ];
  describe.each(contract)('%s keeps the model plugin contract', (_name, make) => {
    it('declares a space with a learning rate and an optimizer, and a valid input spec', () => {
      const plugin = make();
      const hp = new HyperParameters();
      plugin.space(hp);
      const names = hp.space.map((s) => s.name);
      expect(names).toEqual(expect.arrayContaining(['learning_rate', 'optimizer']));
      const spec = plugin.inputSpec(hp);
      expect(spec.channels).toBe(3);
      expect(Number.isInteger(spec.size) && spec.size > 0).toBe(true);
      expect(['fill', 'cover']).toContain(spec.fit);
      // 0 and 255 map into a sensible range.
      for (const v of [0, 255])
        expect(Math.abs(v * spec.scale + spec.offset)).toBeLessThanOrEqual(1);
      expect(plugin.version).toMatch(/^\d+\.\d+\.\d+$/);
    });

    it('builds a softmax over the labels with the declared embedding layer, disposed without leaks', async () => {
      const plugin = make();
      const before = tf.memory().numTensors;
      const hp = new HyperParameters();
      plugin.space(hp);
      const input = plugin.inputSpec(hp);
      const featureSize = featureSizeOf(plugin, hp);
      const model = await plugin.build(hp, {
        tf,
        labels,
        input,
        seed: 1,
        ...(featureSize !== undefined && { features: { size: featureSize } }),
      });
      // A backbone model's head takes the backbone's features; other models take pixels.
      const shape = featureSize ? [featureSize] : [input.size, input.size, 3];
      expect(model.outputs[0]!.shape).toEqual([null, labels.length]);
      expect(model.inputs[0]!.shape).toEqual([null, ...shape]);
      expect(model.layers.at(-1)!.getConfig().activation).toBe('softmax');
      const embedding = model.getLayer(plugin.embeddingLayer);
      expect((embedding.output as TfNode.SymbolicTensor).shape).toHaveLength(2);
      const sums = tf.tidy(() => (model.predict(tf.zeros([2, ...shape])) as TfNode.Tensor).sum(-1));
      for (const s of await sums.data()) expect(s).toBeCloseTo(1, 5);
      sums.dispose();
      model.dispose();
      expect(tf.memory().numTensors).toBe(before);
    });
  });
});

describe('menagerie:cnn', () => {
  it('defaults to the reference baseline: Conv32-Pool-Conv64-Pool-Flatten-Dense128-Dropout0.5-Dense(n), 64×64, Adam 1e-3', async () => {
    const plugin = cnnModel();
    const hp = new HyperParameters();
    plugin.space(hp);
    expect(hp.values).toEqual({
      input_size: 64,
      conv1_filters: 32,
      conv1_kernel: 3,
      conv2_filters: 64,
      conv2_kernel: 3,
      extra_conv_blocks: 0,
      batch_norm: false,
      dense_units: 128,
      dropout: 0.5,
      learning_rate: 1e-3,
      optimizer: 'adam',
    });
    expect(plugin.inputSpec(hp)).toEqual({
      size: 64,
      channels: 3,
      fit: 'fill',
      scale: 1 / 255,
      offset: 0,
      decoder: 'tensorflow',
    });
    const model = await plugin.build(hp, { tf, labels, input: plugin.inputSpec(hp) });
    expect(model.layers.map((l) => l.name)).toEqual([
      'conv1',
      'pool1',
      'conv2',
      'pool2',
      'flatten',
      'embedding',
      'dropout',
      'predictions',
    ]);
    // Keras's model.summary() for the reference: 1,625,539 parameters with 3 classes.
    expect(model.countParams()).toBe(1_625_539);
    model.dispose();
  });

  it('covers the reference search space and more: wider, deeper, batch norm, larger inputs', async () => {
    const hp = new HyperParameters();
    cnnModel().space(hp);
    const spec = (name: string) => hp.space.find((s) => s.name === name);
    expect(spec('conv1_filters')).toMatchObject({ type: 'int', min: 32, max: 128, step: 16 });
    expect(spec('conv2_filters')).toMatchObject({ type: 'int', min: 64, max: 256, step: 32 });
    expect(spec('dense_units')).toMatchObject({ type: 'int', min: 64, max: 512, step: 64 });
    expect(spec('conv1_kernel')).toMatchObject({ type: 'choice', values: [3, 5] });
    expect(spec('dropout')).toMatchObject({ type: 'float', min: 0.1, max: 0.5 });
    expect(spec('learning_rate')).toMatchObject({
      type: 'float',
      min: 1e-4,
      max: 1e-2,
      sampling: 'log',
    });
    expect(spec('input_size')).toMatchObject({ type: 'choice', values: [64, 96, 128] });
    const plugin = cnnModel();
    const big = new HyperParameters({
      extra_conv_blocks: 2,
      batch_norm: true,
      input_size: 96,
      conv1_kernel: 5,
    });
    plugin.space(big);
    const model = await plugin.build(big, { tf, labels, input: plugin.inputSpec(big) });
    const names = model.layers.map((l) => l.name);
    expect(names).toEqual(
      expect.arrayContaining(['conv3', 'conv4', 'conv1_bn', 'conv4_relu', 'pool4']),
    );
    expect(model.inputs[0]!.shape).toEqual([null, 96, 96, 3]);
    model.dispose();
  });

  it('gives the same initial weights for the same seed', async () => {
    const plugin = cnnModel();
    const weights = async (seed: number) => {
      const hp = new HyperParameters({ dense_units: 64 });
      plugin.space(hp);
      const model = await plugin.build(hp, { tf, labels, input: plugin.inputSpec(hp), seed });
      const values = await model.getLayer('embedding').getWeights()[0]!.data();
      model.dispose();
      return Array.from(values.slice(0, 20));
    };
    expect(await weights(5)).toEqual(await weights(5));
    expect(await weights(5)).not.toEqual(await weights(6));
  });
});
