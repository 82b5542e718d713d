import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import type * as TfNode from '@tensorflow/tfjs-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { jobContext } from '../../cli/commands/train.js';
import type { Workspace } from '../../cli/workspace.js';
import { openFeatureCache } from '../../data/feature-cache.js';
import { ingestImages } from '../../data/ingest/ingest.js';
import { decodeToPixels } from '../../data/preprocess.js';
import { writeDemoDataset } from '../../demo/demo-dataset.js';
import { runTrackedTraining } from '../../jobs/tracked-training.js';
import { runTrackedTuning } from '../../jobs/tracked-tuning.js';
import { tfjsModelBackbone } from '../../plugins/backbones/tfjs-model-backbone.js';
import { createModelRegistry } from '../../registry/model-registry.js';
import { BACKBONE_TAGS, registerRunModel } from '../../registry/register-model.js';
import { loadServedModel } from '../../serving/served-model.js';
import { VIEWS_VERSION } from '../../training/backbone-features.js';
import { loadFeatureDataset } from '../../training/feature-dataset.js';
import { unfreezeTopBlocks } from '../../training/fine-tune.js';
import { loadTensorflow } from '../../tf/tensorflow.js';
import { AFHQ_MINI, tempDir } from '../helpers/fixtures.js';
import { saveMiniMobilenet, serveFolder } from '../helpers/mini-mobilenet.js';
import { tempWorkspace } from '../helpers/workspace.js';

const tf = await loadTensorflow();

/** The mini MobileNet as the backbone: 32×32 inputs, cut after its last block. */
const MINI = (location: string) => ({
  backbone: location,
  input_size: 32,
  feature_layer: 'conv_pw_2_relu',
});

describe('transfer learning on a backbone', () => {
  const files = tempDir('menagerie-transfer-');
  const mini = path.join(files.dir, 'mini');
  let ws: Workspace & { dispose(): Promise<void> };
  let http: Awaited<ReturnType<typeof serveFolder>>;

  beforeAll(async () => {
    await saveMiniMobilenet(mini);
    http = await serveFolder(mini);
    const source = path.join(files.dir, 'src');
    await writeDemoDataset({ dir: source, perClass: 8, size: 64, seed: 'transfer' });
    ws = await tempWorkspace();
    await ingestImages(ws, { source });
  }, 120_000);
  afterAll(async () => {
    await http?.close();
    await ws?.dispose();
    files.remove();
  });

  it('trains a head on cached features of a path backbone, and reuses them on the next run', async () => {
    const train = (epochs: number) =>
      runTrackedTraining(jobContext(ws), {
        plugin: 'transfer',
        hp: { ...MINI(mini), views: 2, learning_rate: 0.01 },
        epochs,
        batchSize: 8,
        experiment: 'transfer',
      });
    const { result } = await train(3);
    expect(result.status).toBe('FINISHED');
    expect(result.history).toHaveLength(3);
    const manifest = JSON.parse(
      fs.readFileSync(path.join(result.artifactDir!, 'menagerie.json'), 'utf8'),
    ) as { backbone: Record<string, unknown>; inputSpec: unknown };
    expect(manifest.backbone).toMatchObject({
      name: `${mini}#conv_pw_2_relu`,
      source: { kind: 'path', location: mini },
      featureSize: 24,
      included: false,
    });
    expect(manifest.backbone.weightsSha256).toMatch(/^[0-9a-f]{64}$/);
    expect(manifest.inputSpec).toEqual({
      size: 32,
      channels: 3,
      fit: 'fill',
      scale: 1 / 127.5,
      offset: -1,
    });
    // The features are all cached now: the same data set computes none.
    const backbone = await ws.backbones.load(
      tfjsModelBackbone({
        location: mini,
        featureLayer: 'conv_pw_2_relu',
        inputSpec: manifest.inputSpec as never,
      }),
    );
    const again = await loadFeatureDataset({
      db: ws.database.db,
      blobs: ws.blobs,
      split: 'train',
      backbone,
      views: 2,
      batchSize: 8,
      cacheDir: path.join(ws.dataDir, 'cache'),
    });
    expect(again.computed).toBe(0);
    expect(again.size).toBeGreaterThan(0);
  }, 120_000);

  it('computes features afresh when the backbone or its preprocessing changes', async () => {
    const computed = async (options: Parameters<typeof tfjsModelBackbone>[0]) => {
      const backbone = await ws.backbones.load(tfjsModelBackbone(options));
      const data = await loadFeatureDataset({
        db: ws.database.db,
        blobs: ws.blobs,
        split: 'val',
        backbone,
        views: 1,
        batchSize: 8,
        cacheDir: path.join(ws.dataDir, 'cache'),
      });
      return { computed: data.computed, size: data.size };
    };
    const spec = { size: 32, channels: 3, fit: 'fill', scale: 1 / 127.5, offset: -1 } as const;
    const first = await computed({
      location: mini,
      featureLayer: 'conv_pw_2_relu',
      inputSpec: spec,
    });
    expect(first.computed).toBe(0); // the run above cached them
    // Another cut of the same weights, another scaling, another fit: all computed again.
    for (const change of [
      { location: mini, featureLayer: 'conv_pw_1_relu', inputSpec: spec },
      {
        location: mini,
        featureLayer: 'conv_pw_2_relu',
        inputSpec: { ...spec, scale: 1 / 255, offset: 0 },
      },
      {
        location: mini,
        featureLayer: 'conv_pw_2_relu',
        inputSpec: { ...spec, fit: 'cover' as const },
      },
    ]) {
      expect(await computed(change)).toEqual({ computed: first.size, size: first.size });
    }
  }, 120_000);

  it('loads a URL backbone over the network, and only then', async () => {
    http.requests.length = 0;
    const { result } = await runTrackedTraining(jobContext(ws), {
      plugin: 'transfer',
      hp: { ...MINI(`${http.url}/model.json`), views: 1 },
      epochs: 1,
      batchSize: 8,
      experiment: 'transfer',
    });
    expect(result.status).toBe('FINISHED');
    expect(http.requests).toEqual(expect.arrayContaining(['/model.json', '/weights.bin']));
  }, 120_000);

  it('fine-tunes: a run trains the head, then the top blocks on pixels at a lower rate', async () => {
    const { result } = await runTrackedTraining(jobContext(ws), {
      plugin: 'transfer',
      hp: {
        ...MINI(mini),
        views: 1,
        learning_rate: 0.01,
        fine_tune_blocks: 2,
        fine_tune_after: 2,
        fine_tune_lr_factor: 0.1,
      },
      epochs: 4,
      batchSize: 8,
      earlyStopping: false,
      reduceLrOnPlateau: false,
      experiment: 'transfer',
    });
    expect(result.status).toBe('FINISHED');
    expect(result.history.map((h) => h.lr)).toEqual(
      [0.01, 0.01, 0.001, 0.001].map((lr) => expect.closeTo(lr, 10)),
    );
    expect(result.params).toMatchObject({ fine_tune_blocks: 2, fine_tune_after: 2 });
  }, 120_000);

  it.each(['random', 'grid', 'hyperband', 'bayesian'])(
    'searches the transfer space with the %s tuner',
    async (tuner) => {
      const { runId, outcome } = await runTrackedTuning(jobContext(ws), {
        plugin: 'transfer',
        tuner,
        maxTrials: 2,
        epochs: 1,
        batchSize: 8,
        fixed: { ...MINI(mini), views: 1 },
        tunerOptions: tuner === 'hyperband' ? { maxEpochs: 2 } : {},
        experiment: `tune-${tuner}`,
      });
      expect(outcome.trials.map((t) => t.status)).toEqual(['COMPLETED', 'COMPLETED']);
      const trials = await ws.tracking.listChildRuns(runId);
      expect(trials.map((t) => t.status)).toEqual(['FINISHED', 'FINISHED']);
      // Every trial trained on the fixed backbone, whatever the tuner chose for the head.
      for (const trial of trials) expect(trial.params.backbone).toBe(mini);
    },
    120_000,
  );

  it('fine-tuning changes only the top N blocks; batch norms and the blocks below stay as they were', async () => {
    const plugin = tfjsModelBackbone({
      location: mini,
      featureLayer: 'conv_pw_2_relu',
      inputSpec: {
        size: 32,
        channels: 3,
        fit: 'fill',
        scale: 1 / 127.5,
        offset: -1,
      },
    });
    const copy = await plugin.load({ tf, cacheDir: files.dir });
    const original = await tf.loadLayersModel(pathToFileURL(path.join(mini, 'model.json')).href);
    const head = tf.sequential({
      layers: [tf.layers.dense({ inputShape: [24], units: 3, activation: 'softmax' })],
    });
    const full = unfreezeTopBlocks(tf, copy, head, 2);
    const optimizer = tf.train.adam(0.05);
    for (let step = 0; step < 3; step++) {
      tf.tidy(() => {
        const xs = tf.randomUniform([6, 32, 32, 3], -1, 1, 'float32', step);
        const ys = tf.oneHot(tf.tensor1d([0, 1, 2, 0, 1, 2], 'int32'), 3);
        optimizer.minimize(
          () =>
            tf.losses.softmaxCrossEntropy(
              ys,
              full.apply(xs, { training: true }) as TfNode.Tensor,
            ) as TfNode.Scalar,
        );
      });
    }
    const changed = (name: string) => {
      const now = full.getLayer(name).getWeights();
      const before = original.getLayer(name).getWeights();
      return now.some((w, i) => tf.tidy(() => w.sub(before[i]!).abs().max().dataSync()[0]!) > 0);
    };
    expect(copy.trainable!.blocks.slice(-2).flat()).toEqual(['conv_dw_2', 'conv_pw_2']);
    expect(['conv_dw_2', 'conv_pw_2'].map(changed)).toEqual([true, true]);
    expect(['conv1', 'conv_dw_1', 'conv_pw_1'].map(changed)).toEqual([false, false, false]);
    expect(['conv1_bn', 'conv_dw_2_bn', 'conv_pw_2_bn'].map(changed)).toEqual([
      false,
      false,
      false,
    ]);
    optimizer.dispose();
    full.dispose();
    head.dispose();
    original.dispose();
  });
});

describe('the packaged backbone on real photos', () => {
  let ws: Workspace & { dispose(): Promise<void> };
  beforeAll(async () => {
    ws = await tempWorkspace();
    await ingestImages(ws, { source: AFHQ_MINI, valFraction: 0.25 });
  }, 120_000);
  afterAll(async () => ws?.dispose());

  it('gives an image the same features in training, evaluation and serving, and the version records the backbone', async () => {
    const { runId, result } = await runTrackedTraining(jobContext(ws), {
      plugin: 'transfer',
      hp: { views: 2 },
      epochs: 2,
      limitPerLabel: 6,
      experiment: 'real',
    });
    expect(result.status).toBe('FINISHED');
    const registry = createModelRegistry({ db: ws.database.db });
    const version = await registerRunModel(registry, ws.tracking, ws.plugins, {
      name: 'faces',
      runId,
    });
    const backbone = await ws.backbones.load('mobilenet_v2_140');
    expect(version.tags).toEqual({
      [BACKBONE_TAGS.name]: 'menagerie:mobilenet_v2_140',
      [BACKBONE_TAGS.source]: expect.stringMatching(/^npm:nsfwjs@\d+\.\d+\.\d+\/mobilenet_v2_mid$/),
      [BACKBONE_TAGS.sha256]: backbone.loaded.weightsSha256,
      [BACKBONE_TAGS.fineTuned]: 'false',
    });

    // Serving (and evaluation, which predicts through the served model) computes the
    // features of an image on its own; training computed them among others and cached them.
    const served = await loadServedModel(version, ws);
    const cache = await openFeatureCache({
      cacheDir: path.join(ws.dataDir, 'cache'),
      featureSize: 1792,
      identity: {
        backbone: 'menagerie:mobilenet_v2_140',
        weightsSha256: backbone.loaded.weightsSha256,
        spec: served.inputSpec,
        viewsVersion: VIEWS_VERSION,
      },
    });
    try {
      const rows = await ws.database.db
        .selectFrom('images')
        .select(['uri', 'sha256'])
        .limit(3)
        .execute();
      for (const row of rows) {
        const bytes = await ws.blobs.get(row.uri);
        expect(crypto.createHash('sha256').update(bytes).digest('hex')).toBe(row.sha256);
        const pixels = await decodeToPixels(bytes, served.inputSpec);
        const { features, probabilities } = served.forward([pixels]);
        expect(probabilities[0]).toHaveLength(3);
        expect(Array.from(features![0]!)).toEqual(Array.from(cache.get(row.sha256, 0)!));
      }
    } finally {
      await cache.close();
      served.dispose();
    }
  }, 180_000);
});
