import fs from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import type * as TfNode from '@tensorflow/tfjs-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadTensorflow } from '../../tf/tensorflow.js';
import { builtinPlugins } from '../../plugins/builtins.js';
import { cnnModel } from '../../plugins/models/cnn.js';
import { mobilenetTransfer } from '../../plugins/models/mobilenet-transfer.js';
import type { ModelPlugin } from '../../plugin-api/plugin.js';
import { HyperParameters } from '../../plugin-api/hyperparameters.js';
import { trainModel } from '../../training/trainer.js';
import { tempDir } from '../helpers/fixtures.js';
import { syntheticDataset } from '../helpers/synthetic-dataset.js';

const tf = await loadTensorflow();
const labels = ['cat', 'dog', 'wild'];

/** A MobileNet-shaped base (conv, batch norm, depthwise/pointwise blocks, classifier), 32×32. */
async function saveMiniMobilenet(dir: string): Promise<void> {
  const input = tf.input({ shape: [32, 32, 3], name: 'input_1' });
  let x = tf.layers
    .conv2d({
      name: 'conv1',
      filters: 8,
      kernelSize: 3,
      strides: 2,
      padding: 'same',
      useBias: false,
    })
    .apply(input);
  x = tf.layers.batchNormalization({ name: 'conv1_bn' }).apply(x);
  x = tf.layers.reLU({ name: 'conv1_relu', maxValue: 6 }).apply(x);
  for (const block of [1, 2]) {
    x = tf.layers
      .depthwiseConv2d({ name: `conv_dw_${block}`, kernelSize: 3, padding: 'same', useBias: false })
      .apply(x);
    x = tf.layers.batchNormalization({ name: `conv_dw_${block}_bn` }).apply(x);
    x = tf.layers.reLU({ name: `conv_dw_${block}_relu`, maxValue: 6 }).apply(x);
    x = tf.layers
      .conv2d({ name: `conv_pw_${block}`, filters: 8 * (block + 1), kernelSize: 1, useBias: false })
      .apply(x);
    x = tf.layers.batchNormalization({ name: `conv_pw_${block}_bn` }).apply(x);
    x = tf.layers.reLU({ name: `conv_pw_${block}_relu`, maxValue: 6 }).apply(x);
  }
  x = tf.layers.globalAveragePooling2d({ name: 'global_average_pooling2d_1' }).apply(x);
  const out = tf.layers
    .dense({ name: 'conv_preds', units: 10, activation: 'softmax' })
    .apply(x) as TfNode.SymbolicTensor;
  const model = tf.model({ inputs: input, outputs: out });
  await model.save(pathToFileURL(dir).href);
  model.dispose();
}

const base = tempDir('menagerie-mobilenet-');
let server: http.Server;
let baseUrl: string;
const requests: string[] = [];

beforeAll(async () => {
  await saveMiniMobilenet(base.dir);
  server = http.createServer((req, res) => {
    requests.push(req.url ?? '');
    const name = (req.url ?? '').slice(1);
    const file = path.join(base.dir, name);
    if (name.includes('/') || !fs.existsSync(file)) {
      res.writeHead(404).end('not found');
      return;
    }
    res.writeHead(200, {
      'content-type': file.endsWith('.json') ? 'application/json' : 'application/octet-stream',
    });
    res.end(fs.readFileSync(file));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  baseUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});

afterAll(async () => {
  await new Promise((resolve) => server.close(resolve));
  base.remove();
});

const miniTransfer = (baseModel: string, featureLayer = 'conv_pw_2_relu') =>
  mobilenetTransfer({ baseModel, featureLayer, inputSize: 32 });

describe('built-in model plugins', () => {
  it('registers cnn and mobilenet-transfer among the built-ins', () => {
    const names = builtinPlugins()
      .filter((p) => p.kind === 'model')
      .map((p) => p.name);
    expect(names).toEqual(['menagerie:cnn', 'menagerie:mobilenet-transfer']);
  });

  // The same contract for every model plugin (the built-in mobilenet pointed at the local base).
  const contract: [string, () => ModelPlugin][] = [
    ['menagerie:cnn', cnnModel],
    ['menagerie:mobilenet-transfer', () => miniTransfer(base.dir)],
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
      const model = await plugin.build(hp, { tf, labels, input, seed: 1 });
      expect(model.outputs[0]!.shape).toEqual([null, labels.length]);
      expect(model.inputs[0]!.shape).toEqual([null, input.size, input.size, 3]);
      expect(model.layers.at(-1)!.getConfig().activation).toBe('softmax');
      const embedding = model.getLayer(plugin.embeddingLayer);
      expect((embedding.output as TfNode.SymbolicTensor).shape).toHaveLength(2);
      const sums = tf.tidy(() =>
        (model.predict(tf.zeros([2, input.size, input.size, 3])) as TfNode.Tensor).sum(-1),
      );
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

describe('menagerie:mobilenet-transfer', () => {
  it('loads the base by path and by http URL, frozen, with a trainable head', async () => {
    for (const location of [base.dir, `${baseUrl}/model.json`]) {
      const plugin = miniTransfer(location);
      const hp = new HyperParameters();
      plugin.space(hp);
      expect(hp.values).toMatchObject({
        base_model: location,
        feature_layer: 'conv_pw_2_relu',
        input_size: 32,
      });
      const model = await plugin.build(hp, { tf, labels, input: plugin.inputSpec(hp), seed: 1 });
      expect(model.trainableWeights.map((w) => w.originalName.split('/')[0])).toEqual([
        'head_embedding',
        'head_embedding',
        'head_predictions',
        'head_predictions',
      ]);
      // Cut at the feature layer: the base's own classifier is gone.
      expect(model.layers.some((l) => l.name === 'conv_preds')).toBe(false);
      expect(model.layers.map((l) => l.name)).toContain('head_pool');
      model.dispose();
    }
    expect(requests).toEqual(expect.arrayContaining(['/model.json', '/weights.bin']));
  });

  it('uses a pooled feature layer as is, and fetches the base once per plugin', async () => {
    const plugin = miniTransfer(`${baseUrl}/model.json`, 'global_average_pooling2d_1');
    requests.length = 0;
    for (let i = 0; i < 2; i++) {
      const hp = new HyperParameters({ head_units: 64 });
      plugin.space(hp);
      const model = await plugin.build(hp, { tf, labels, input: plugin.inputSpec(hp) });
      expect(model.layers.map((l) => l.name)).not.toContain('head_pool');
      model.dispose();
    }
    expect(requests.filter((r) => r === '/model.json')).toHaveLength(1);
  });

  it('maps pixels to [-1, 1] and records the base as a fixed hyperparameter', () => {
    const plugin = mobilenetTransfer({ baseModel: 'https://example.invalid/m/model.json' });
    const hp = new HyperParameters();
    plugin.space(hp);
    expect(plugin.inputSpec(hp)).toEqual({
      size: 224,
      channels: 3,
      fit: 'fill',
      scale: 1 / 127.5,
      offset: -1,
    });
    expect(hp.space.find((s) => s.name === 'base_model')).toMatchObject({
      type: 'fixed',
      value: 'https://example.invalid/m/model.json',
    });
  });

  it('says clearly when the base cannot be loaded or does not fit', async () => {
    const build = async (plugin: ModelPlugin) => {
      const hp = new HyperParameters();
      plugin.space(hp);
      return plugin.build(hp, { tf, labels, input: plugin.inputSpec(hp) });
    };
    await expect(build(miniTransfer(`${baseUrl}/missing/model.json`))).rejects.toMatchObject({
      code: 'MODEL_BASE_UNAVAILABLE',
    });
    await expect(build(miniTransfer(path.join(base.dir, 'nope')))).rejects.toMatchObject({
      code: 'MODEL_BASE_UNAVAILABLE',
    });
    await expect(build(miniTransfer(base.dir, 'conv_pw_9_relu'))).rejects.toThrow(
      /no layer 'conv_pw_9_relu'/,
    );
    await expect(
      build(mobilenetTransfer({ baseModel: base.dir, featureLayer: 'conv_pw_2_relu' })),
    ).rejects.toThrow(/expects input \[null,32,32,3\]/);
  });

  it('fine-tunes the top base layers from the chosen epoch, keeping frozen batch norms fixed', async () => {
    const plugin = miniTransfer(base.dir);
    const hp = { fine_tune: true, fine_tune_layers: 2, fine_tune_after: 1, learning_rate: 0.01 };
    const train = syntheticDataset({
      perClass: 12,
      size: 32,
      batchSize: 12,
      seed: 1,
      scale: 1 / 127.5,
      offset: -1,
    });
    const val = syntheticDataset({
      perClass: 4,
      size: 32,
      batchSize: 12,
      seed: 2,
      scale: 1 / 127.5,
      offset: -1,
    });
    const out = tempDir('menagerie-ft-');
    const before = tf.memory().numTensors;
    const result = await trainModel({
      plugin,
      hp,
      train,
      val,
      epochs: 2,
      seed: 1,
      outputDir: out.dir,
    });
    expect(tf.memory().numTensors).toBe(before);
    expect(result.history).toHaveLength(2);
    const saved = await tf.loadLayersModel(
      pathToFileURL(path.join(result.artifactDir!, 'model.json')).href,
    );
    const original = await tf.loadLayersModel(
      pathToFileURL(path.join(base.dir, 'model.json')).href,
    );
    const same = (name: string) => {
      const a = saved.getLayer(name).getWeights();
      const b = original.getLayer(name).getWeights();
      return a.every((w, i) => tf.tidy(() => w.sub(b[i]!).abs().max().dataSync()[0]) === 0);
    };
    // Frozen throughout: the first conv and every batch norm (moving statistics included).
    expect(same('conv1')).toBe(true);
    expect(same('conv_pw_2_bn')).toBe(true);
    expect(same('conv1_bn')).toBe(true);
    // Unfrozen at epoch 1 (the one saved): the top two weighted non-BN base layers moved.
    expect(result.bestEpoch).toBe(1);
    expect(same('conv_pw_2')).toBe(false);
    expect(same('conv_dw_2')).toBe(false);
    expect(same('conv_pw_1')).toBe(true);
    const unfrozen = await plugin.onEpochStart!(saved, 1, new HyperParameters(hp), {
      signal: new AbortController().signal,
    });
    expect(unfrozen).toBe(false); // the saved config already has them trainable
    saved.dispose();
    original.dispose();
    out.remove();
  });
});
