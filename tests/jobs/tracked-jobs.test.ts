import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openWorkspace, type Workspace } from '../../cli/workspace.js';
import { jobContext } from '../../cli/commands/train.js';
import { writeDemoDataset } from '../../demo/demo-dataset.js';
import { ingestImages } from '../../data/ingest/ingest.js';
import { createModelRegistry } from '../../registry/model-registry.js';
import { registerRunModel } from '../../registry/register-model.js';
import { runTrackedTraining } from '../../jobs/tracked-training.js';
import { runTrackedTuning } from '../../jobs/tracked-tuning.js';
import { createInferenceEngine } from '../../serving/inference-engine.js';
import { followChampion } from '../../serving/registry-champion.js';
import { startCli } from '../helpers/cli.js';
import { tempDir } from '../helpers/fixtures.js';

const FIXTURE_CONFIG = path.resolve(
  import.meta.dirname,
  '../fixtures/plugins/menagerie.config.json',
);

/** A small real data set: generated faces, ingested into a real SQLite file. */
describe('tracked training and tuning', () => {
  const { dir, remove } = tempDir('menagerie-jobs-');
  const dataDir = path.join(dir, 'data');
  let ws: Workspace;
  beforeAll(async () => {
    await writeDemoDataset({ dir: path.join(dir, 'src'), perClass: 12, size: 64, seed: 'jobs' });
    ws = await openWorkspace({ dataDir, config: FIXTURE_CONFIG });
    await ingestImages(ws, { source: path.join(dir, 'src') });
  }, 120_000);
  afterAll(async () => {
    await ws.close();
    remove();
  });

  const train = (seed: number, epochs = 3) =>
    runTrackedTraining(jobContext(ws), {
      plugin: 'tiny-mlp',
      epochs,
      seed,
      batchSize: 8,
      augment: false,
      earlyStopping: false,
      reduceLrOnPlateau: false,
      experiment: 'tests',
    });

  it('logs params at the start and metrics at every epoch; loss goes down; a seed repeats', async () => {
    const first = await train(7);
    const run = await ws.tracking.getRun(first.runId);
    expect(run.status).toBe('FINISHED');
    expect(run.params).toMatchObject({ plugin: 'tiny-mlp', units: '16', epochs: '3', seed: '7' });
    const loss = await ws.tracking.getMetricHistory(first.runId, 'loss');
    expect(loss.map((m) => m.step)).toEqual([0, 1, 2]);
    expect(loss.at(-1)!.value).toBeLessThan(loss[0]!.value);
    expect((await ws.tracking.getMetricHistory(first.runId, 'val_accuracy')).length).toBe(3);
    expect(run.tags['menagerie.model_artifact']).toBe('model');

    const again = await train(7);
    const lossAgain = await ws.tracking.getMetricHistory(again.runId, 'val_loss');
    const valLoss = await ws.tracking.getMetricHistory(first.runId, 'val_loss');
    expect(lossAgain.map((m) => m.value)).toEqual(valLoss.map((m) => m.value));
  });

  it('registers a finished run through its plugin and serves it; an unknown plugin leaves the registry unchanged', async () => {
    const { runId } = await train(3, 1);
    const registry = createModelRegistry({ db: ws.database.db });
    const version = await registerRunModel(registry, ws.tracking, ws.plugins, {
      name: 'jobs',
      runId,
    });
    expect(version).toMatchObject({ version: 1, status: 'READY', runId, plugin: 'tiny-mlp' });

    // …and serves it: the third-party plugin's model answers through the inference engine.
    await registry.promoteChampion('jobs', 1);
    const engine = await createInferenceEngine(followChampion(registry, ws, 'jobs'));
    try {
      const image = await ws.database.db
        .selectFrom('images')
        .select('uri')
        .executeTakeFirstOrThrow();
      const prediction = await engine.predict(await ws.blobs.get(image.uri));
      expect(prediction.modelVersion).toEqual({ name: 'jobs', version: 1 });
      expect(prediction.probabilities.map((p) => p.label).sort()).toEqual(['cat', 'dog', 'wild']);
    } finally {
      await engine.close();
    }

    const throwing = await openWorkspace({ dataDir, cwd: dir });
    try {
      // Without the config the plugin is unknown: same outcome as a plugin that throws.
      await expect(
        registerRunModel(
          createModelRegistry({ db: throwing.database.db }),
          throwing.tracking,
          throwing.plugins,
          {
            name: 'jobs',
            runId,
          },
        ),
      ).rejects.toMatchObject({ code: 'PLUGIN_NOT_FOUND' });
    } finally {
      await throwing.close();
    }
    expect((await registry.listVersions('jobs')).items.length).toBe(1);
  });

  it('a training process killed mid-run leaves its run FAILED at the next start', async () => {
    const child = startCli([
      '--data-dir',
      dataDir,
      '--config',
      FIXTURE_CONFIG,
      'train',
      '--plugin',
      'tiny-mlp-held', // holds before its third epoch: it cannot end before the kill
      '--epochs',
      '200',
      '--batch-size',
      '4',
      '--experiment',
      'killed',
    ]);
    let runId = '';
    await new Promise<void>((resolve, reject) => {
      child.stderr!.on('data', (chunk: Buffer) => {
        const found = /run ([0-9a-f]{32})/.exec(chunk.toString());
        if (found) runId = found[1]!;
        if (runId && /epoch 2\/200 /.test(chunk.toString())) resolve();
      });
      child.on('exit', () => reject(new Error('training ended before it was killed')));
    });
    child.kill('SIGKILL');
    await new Promise((r) => child.once('exit', r));
    const after = await openWorkspace({ dataDir, config: FIXTURE_CONFIG });
    try {
      const run = await after.tracking.getRun(runId);
      expect(run.status).toBe('FAILED');
      expect((await after.tracking.getMetricHistory(runId, 'loss')).length).toBeGreaterThan(0);
    } finally {
      await after.close();
    }
  }, 120_000);

  it('a stopped tuning run resumes under the same id and never reruns a finished trial', async () => {
    const controller = new AbortController();
    const options = {
      plugin: 'tiny-mlp',
      tuner: 'random',
      maxTrials: 3,
      epochs: 1,
      batchSize: 8,
      experiment: 'tuning',
    };
    const first = await runTrackedTuning(jobContext(ws), {
      ...options,
      signal: controller.signal,
      onTrialEnd: () => controller.abort(),
    });
    expect(first.outcome.aborted).toBe(true);
    expect((await ws.tracking.getRun(first.runId)).status).toBe('KILLED');

    const resumed = await runTrackedTuning(jobContext(ws), { ...options, resume: first.runId });
    expect(resumed.runId).toBe(first.runId);
    expect(resumed.outcome.trials.map((t) => t.trialId)).toEqual([
      'trial-0001',
      'trial-0002',
      'trial-0003',
    ]);
    const children = await ws.tracking.listChildRuns(first.runId);
    const perTrial = children.map((c) => c.tags['menagerie.trial_id']);
    expect(perTrial.filter((t) => t === 'trial-0001')).toHaveLength(1);
    expect(children.every((c) => c.status === 'FINISHED')).toBe(true);
    const parent = await ws.tracking.getRun(first.runId);
    expect(parent.status).toBe('FINISHED');
    expect(parent.tags['menagerie.best_run']).toMatch(/^[0-9a-f]{32}$/);
  });
});
