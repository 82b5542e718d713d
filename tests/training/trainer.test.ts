import fs from 'node:fs';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { loadTensorflow } from '../../tf/tensorflow.js';
import { definePlugin, type ModelPlugin } from '../../plugin-api/plugin.js';
import { loadModelArtifact } from '../../training/model-artifact.js';
import { trainModel } from '../../training/trainer.js';
import type { TrainingObserver } from '../../training/training-observer.js';
import { tempDir } from '../helpers/fixtures.js';
import { syntheticDataset } from '../helpers/synthetic-dataset.js';

const tf = await loadTensorflow();

/** A model small enough that a whole training takes a fraction of a second. */
const tinyPlugin: ModelPlugin = definePlugin({
  name: 'test:tiny',
  kind: 'model',
  version: '0.0.1',
  space: (hp) => {
    hp.int('units', 4, 32, { step: 4, default: 16 });
    hp.float('learning_rate', 1e-4, 1e-1, { sampling: 'log', default: 1e-2 });
    hp.choice('optimizer', ['adam', 'sgd']);
  },
  inputSpec: () => ({ size: 8, channels: 3, fit: 'fill', scale: 1 / 255, offset: 0 }),
  build: (hp, { tf, labels, input, seed }) => {
    const init = (i: number) =>
      seed === undefined
        ? {}
        : { kernelInitializer: tf.initializers.glorotUniform({ seed: seed + i }) };
    const model = tf.sequential();
    model.add(
      tf.layers.conv2d({
        inputShape: [input.size, input.size, 3],
        filters: 4,
        kernelSize: 3,
        activation: 'relu',
        name: 'conv',
        ...init(0),
      }),
    );
    model.add(tf.layers.flatten({ name: 'flatten' }));
    model.add(
      tf.layers.dense({
        units: hp.get('units') as number,
        activation: 'relu',
        name: 'embedding',
        ...init(1),
      }),
    );
    model.add(tf.layers.dropout({ rate: 0.3, name: 'dropout' }));
    model.add(
      tf.layers.dense({
        units: labels.length,
        activation: 'softmax',
        name: 'predictions',
        ...init(2),
      }),
    );
    return model;
  },
  embeddingLayer: 'embedding',
});

const data = (seed = 1, noise = 70) => ({
  train: syntheticDataset({ perClass: 40, size: 8, batchSize: 16, seed, noise }),
  val: syntheticDataset({
    perClass: 10,
    size: 8,
    batchSize: 16,
    seed: seed + 100,
    noise,
    shuffle: false,
  }),
});

describe('trainModel', () => {
  const cleanups: (() => void)[] = [];
  afterEach(() => {
    for (const c of cleanups.splice(0)) c();
  });
  const outputDir = () => {
    const t = tempDir('menagerie-train-');
    cleanups.push(t.remove);
    return t.dir;
  };

  it('lowers the loss, reports every epoch, saves the best checkpoint and leaks no tensor', async () => {
    const before = tf.memory().numTensors;
    const events: string[] = [];
    const epochs: Record<string, number>[] = [];
    const observer: TrainingObserver = {
      onStart: ({ params }) => void events.push(`start ${params.plugin} units=${params.units}`),
      onBatchEnd: (_e, _b, loss, { batches }) => {
        expect(Number.isFinite(loss)).toBe(true);
        expect(batches).toBe(8);
      },
      onEpochEnd: (epoch, metrics, { lr, seconds }) => {
        events.push(`epoch ${epoch}`);
        epochs.push(metrics);
        expect(lr).toBe(0.01);
        expect(seconds).toBeGreaterThan(0);
      },
      onCheckpoint: (dir) => void events.push(`checkpoint ${path.basename(dir)}`),
      onEnd: (result) => void events.push(`end ${result.status}`),
    };
    const { train, val } = data();
    const result = await trainModel({
      plugin: tinyPlugin,
      hp: { units: 16 },
      train,
      val,
      epochs: 4,
      seed: 7,
      outputDir: outputDir(),
      observer,
    });
    expect(tf.memory().numTensors).toBe(before);
    expect(result.status).toBe('FINISHED');
    expect(events[0]).toBe('start test:tiny units=16');
    expect(events.filter((e) => e.startsWith('epoch'))).toEqual([
      'epoch 0',
      'epoch 1',
      'epoch 2',
      'epoch 3',
    ]);
    expect(events.at(-1)).toBe('end FINISHED');
    expect(result.history).toHaveLength(4);
    expect(result.history.at(-1)!.loss).toBeLessThan(result.history[0]!.loss!);
    expect(epochs[0]).toEqual(
      expect.objectContaining({
        loss: expect.any(Number),
        accuracy: expect.any(Number),
        val_loss: expect.any(Number),
      }),
    );
    // The best epoch (by val_loss) is the one saved, and its metrics are the result's.
    const bestLoss = Math.min(...result.history.map((h) => h.val_loss!));
    expect(result.history[result.bestEpoch!]!.val_loss).toBe(bestLoss);
    expect(result.metrics!.loss).toBe(bestLoss);
    expect(result.metrics!.accuracy).toBeGreaterThan(0.8);
    const files = fs.readdirSync(result.artifactDir!).sort();
    expect(files).toEqual([
      'confusion_matrix.png',
      'evaluation.json',
      'menagerie.json',
      'model.json',
      'weights.bin',
    ]);
    const { model, manifest } = await loadModelArtifact(result.artifactDir!);
    expect(manifest).toEqual(
      expect.objectContaining({
        plugin: 'test:tiny',
        pluginVersion: '0.0.1',
        labels: ['cat', 'dog', 'wild'],
        epoch: result.bestEpoch,
        embeddingLayer: 'embedding',
        hyperparameters: { units: 16, learning_rate: 0.01, optimizer: 'adam' },
      }),
    );
    expect(manifest.metrics.val_accuracy).toBe(result.metrics!.accuracy);
    model.dispose();
  });

  it('replays the same metrics from the same seed, and others from another', async () => {
    const run = async (seed: number) => {
      const { train, val } = data();
      const r = await trainModel({
        plugin: tinyPlugin,
        hp: {},
        train,
        val,
        epochs: 2,
        seed,
        outputDir: outputDir(),
      });
      return r.history.map(({ seconds: _s, ...h }) => h);
    };
    const a = await run(3);
    expect(await run(3)).toEqual(a);
    expect(await run(4)).not.toEqual(a);
  });

  it('stops at the next batch on abort: KILLED, with the best checkpoint so far loadable', async () => {
    const controller = new AbortController();
    const before = tf.memory().numTensors;
    const { train, val } = data();
    let batchesAfterAbort = 0;
    const result = await trainModel({
      plugin: tinyPlugin,
      hp: {},
      train,
      val,
      epochs: 50,
      seed: 1,
      outputDir: outputDir(),
      signal: controller.signal,
      observer: {
        onBatchEnd: (epoch) => {
          if (controller.signal.aborted) batchesAfterAbort++;
          if (epoch === 2) controller.abort();
        },
      },
    });
    expect(result.status).toBe('KILLED');
    expect(batchesAfterAbort).toBe(0);
    expect(result.history.map((h) => h.epoch)).toEqual([0, 1]);
    expect(tf.memory().numTensors).toBe(before);
    const { model, manifest } = await loadModelArtifact(result.artifactDir!);
    expect(manifest.epoch).toBe(result.bestEpoch);
    const probs = tf.tidy(
      () => model.predict(tf.zeros([1, 8, 8, 3])) as ReturnType<typeof tf.zeros>,
    );
    expect(probs.shape).toEqual([1, 3]);
    tf.dispose(probs);
    model.dispose();
  });

  it('returns KILLED with no artifact when aborted before the first epoch ends', async () => {
    const controller = new AbortController();
    controller.abort();
    const { train, val } = data();
    const result = await trainModel({
      plugin: tinyPlugin,
      hp: {},
      train,
      val,
      epochs: 3,
      seed: 1,
      outputDir: outputDir(),
      signal: controller.signal,
    });
    expect(result).toEqual(
      expect.objectContaining({ status: 'KILLED', bestEpoch: null, artifactDir: null }),
    );
  });

  it('stops early on a plateau and reduces the learning rate before that', async () => {
    // Pure noise: nothing to learn, so val_loss stops improving quickly.
    const { train, val } = data(5, 2000);
    const lrs: number[] = [];
    const result = await trainModel({
      plugin: tinyPlugin,
      hp: { learning_rate: 0.05 },
      train,
      val,
      epochs: 40,
      seed: 1,
      outputDir: outputDir(),
      monitor: 'val_accuracy',
      earlyStopping: { monitor: 'val_loss', patience: 3, minDelta: 0.01 },
      reduceLrOnPlateau: { monitor: 'val_loss', patience: 1, factor: 0.5, minLr: 0.01 },
      observer: { onEpochEnd: (_e, _m, { lr }) => void lrs.push(lr) },
    });
    expect(result.stoppedEarly).toBe(true);
    expect(result.history.length).toBeLessThan(40);
    expect(lrs[0]).toBe(0.05);
    expect(Math.min(...lrs)).toBeLessThan(0.05);
    expect(Math.min(...lrs)).toBeGreaterThanOrEqual(0.01);
    const accuracies = result.history.map((h) => h.val_accuracy!);
    expect(result.metrics!.accuracy).toBe(Math.max(...accuracies));
  });

  it('warm-starts from a checkpoint and counts epochs from initialEpoch', async () => {
    const { train, val } = data();
    const first = await trainModel({
      plugin: tinyPlugin,
      hp: {},
      train,
      val,
      epochs: 2,
      seed: 1,
      outputDir: outputDir(),
    });
    const seen: number[] = [];
    const second = await trainModel({
      plugin: tinyPlugin,
      hp: {},
      train,
      val,
      epochs: 4,
      initialEpoch: 2,
      warmStartDir: first.artifactDir!,
      seed: 1,
      outputDir: outputDir(),
      observer: { onEpochEnd: (epoch) => void seen.push(epoch) },
    });
    expect(seen).toEqual([2, 3]);
    // Starting from trained weights, the first new epoch is already better than a cold start's first.
    expect(second.history[0]!.loss).toBeLessThan(first.history[0]!.loss!);
    await expect(
      trainModel({
        plugin: tinyPlugin,
        hp: { units: 8 },
        train,
        val,
        epochs: 1,
        seed: 1,
        warmStartDir: first.artifactDir!,
        outputDir: outputDir(),
      }),
    ).rejects.toMatchObject({ code: 'MODEL_ARTIFACT_INVALID' });
  });

  it('weights the loss by class when asked, and refuses mismatched labels', async () => {
    const train = syntheticDataset({ perClass: [60, 10, 10], size: 8, batchSize: 16, seed: 2 });
    const val = syntheticDataset({ perClass: 8, size: 8, batchSize: 16, seed: 3, shuffle: false });
    const result = await trainModel({
      plugin: tinyPlugin,
      hp: {},
      train,
      val,
      epochs: 2,
      seed: 1,
      classWeights: true,
      outputDir: outputDir(),
    });
    expect(result.params.class_weights).toBe(true);
    expect(result.history).toHaveLength(2);
    const other = syntheticDataset({ labels: ['a', 'b', 'c'], perClass: 2, size: 8, batchSize: 4 });
    await expect(
      trainModel({
        plugin: tinyPlugin,
        hp: {},
        train,
        val: other,
        epochs: 1,
        seed: 1,
        outputDir: outputDir(),
      }),
    ).rejects.toMatchObject({ code: 'CONFIG_INVALID' });
  });

  it.each([
    [
      'a wrong number of output units',
      { units: 5 },
      /should end in one softmax of 3 units.*\[null,5\]/,
    ],
    ['no embedding layer', { embedding: 'missing' }, /has no embedding layer 'missing'/],
  ] as const)(
    'refuses a plugin whose model has %s with PLUGIN_INVALID and frees the model once',
    async (_name, wrong: { units?: number; embedding?: string }, message) => {
      const before = tf.memory().numTensors;
      const plugin: ModelPlugin = definePlugin({
        ...tinyPlugin,
        name: 'test:misshapen',
        build: (hp, context) => {
          const model = tinyPlugin.build(hp, {
            ...context,
            labels: wrong.units
              ? Array.from({ length: wrong.units }, (_, i) => `c${i}`)
              : context.labels,
          });
          return model;
        },
        embeddingLayer: wrong.embedding ?? 'embedding',
      });
      const { train, val } = data();
      const failure = await trainModel({
        plugin,
        hp: {},
        train,
        val,
        epochs: 1,
        seed: 1,
        outputDir: outputDir(),
      }).catch((error: unknown) => error);
      expect(failure).toMatchObject({
        code: 'PLUGIN_INVALID',
        message: expect.stringMatching(message),
      });
      expect(tf.memory().numTensors).toBe(before);
    },
  );
});
