import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { TrackingStore } from '../../tracking/tracking-store.js';
import { memoryTrackingStore } from '../helpers/tracking.js';
import { writeFile } from '../helpers/fixtures.js';
import { forEachDatabase } from '../helpers/backends.js';

forEachDatabase((backend) => {
  let store: TrackingStore;
  let artifactRoot: string;
  let dispose: () => Promise<void>;

  beforeEach(async () => {
    ({ store, artifactRoot, dispose } = await memoryTrackingStore(backend));
  });
  afterEach(() => dispose());

  async function newRun(name?: string) {
    const experiment = await store.getOrCreateExperiment('faces');
    return store.createRun({ experimentId: experiment.id, ...(name ? { name } : {}) });
  }

  describe('experiments', () => {
    it('are created with a unique name, description and tags, and found by id or name', async () => {
      const created = await store.createExperiment(' faces ', {
        description: 'cats vs dogs',
        tags: { team: 'vision' },
      });
      expect(created).toMatchObject({
        name: 'faces',
        description: 'cats vs dogs',
        lifecycle: 'active',
        tags: { team: 'vision' },
      });
      expect(await store.getExperiment(created.id)).toEqual(created);
      expect(await store.getExperimentByName('faces')).toEqual(created);
      expect(await store.getExperimentByName('nope')).toBeUndefined();
      await expect(store.getExperiment(999)).rejects.toMatchObject({
        code: 'EXPERIMENT_NOT_FOUND',
      });
      await expect(store.createExperiment('faces')).rejects.toMatchObject({
        code: 'EXPERIMENT_EXISTS',
        message: expect.stringContaining(`id ${created.id}`),
      });
      await store.setExperimentTag(created.id, 'team', 'ml');
      expect((await store.getExperiment(created.id)).tags).toEqual({ team: 'ml' });
    });

    it.each(['', '   ', 'a\nb', 'tab\there', 'x'.repeat(256)])(
      'refuses the name %j',
      async (name) => {
        await expect(store.createExperiment(name)).rejects.toMatchObject({
          code: 'EXPERIMENT_NAME_INVALID',
        });
      },
    );

    it('getOrCreateExperiment returns one experiment to concurrent callers', async () => {
      const all = await Promise.all(
        Array.from({ length: 5 }, () => store.getOrCreateExperiment('tuning')),
      );
      expect(new Set(all.map((e) => e.id)).size).toBe(1);
      expect(await store.listExperiments()).toHaveLength(1);
    });

    it('soft-deletes: hidden from lists and searches, no new runs, name kept; restore undoes it', async () => {
      const experiment = await store.createExperiment('old');
      const run = await store.createRun({ experimentId: experiment.id });
      await store.deleteExperiment(experiment.id);
      expect(await store.listExperiments()).toEqual([]);
      expect(await store.listExperiments({ includeDeleted: true })).toMatchObject([
        { name: 'old', lifecycle: 'deleted' },
      ]);
      expect((await store.searchRuns()).runs).toEqual([]);
      expect((await store.searchRuns({ includeDeleted: true })).runs).toHaveLength(1);
      await expect(store.createRun({ experimentId: experiment.id })).rejects.toMatchObject({
        code: 'EXPERIMENT_NOT_ACTIVE',
      });
      await expect(store.getOrCreateExperiment('old')).rejects.toMatchObject({
        code: 'EXPERIMENT_NOT_ACTIVE',
      });
      await expect(store.createExperiment('old')).rejects.toMatchObject({
        code: 'EXPERIMENT_EXISTS',
        message: expect.stringContaining('deleted; restore it'),
      });
      await store.restoreExperiment(experiment.id);
      expect((await store.searchRuns()).runs.map((r) => r.id)).toEqual([run.id]);
    });

    it('gives concurrent creators of one name one experiment, and the others EXPERIMENT_EXISTS', async () => {
      const results = await Promise.allSettled(
        Array.from({ length: 4 }, () => store.createExperiment('race')),
      );
      expect(results.filter((r) => r.status === 'fulfilled')).toHaveLength(1);
      for (const r of results.filter((r) => r.status === 'rejected'))
        expect((r as PromiseRejectedResult).reason).toMatchObject({ code: 'EXPERIMENT_EXISTS' });
    });
  });

  describe('runs', () => {
    it('go from RUNNING to FINISHED with params, latest metrics and tags, owned by this process', async () => {
      const experiment = await store.createExperiment('faces');
      const before = Date.now();
      const run = await store.createRun({ experimentId: experiment.id, tags: { team: 'x' } });
      expect(run.id).toMatch(/^[0-9a-f]{32}$/);
      expect(run.name).toMatch(/^[a-z]+-[a-z]+-\d+$/);
      expect(run).toMatchObject({
        experimentId: experiment.id,
        status: 'RUNNING',
        endTime: null,
        parentRunId: null,
        lifecycle: 'active',
        ownerPid: process.pid,
        hostname: os.hostname(),
        tags: { team: 'x' },
      });
      expect(run.startTime).toBeGreaterThanOrEqual(before);
      expect(fileURLToPath(run.artifactUri)).toBe(
        path.join(artifactRoot, String(experiment.id), run.id, 'artifacts'),
      );

      await store.logParams(run.id, { optimizer: 'adam', lr: 0.001, augment: true });
      await store.logMetrics(run.id, { loss: 0.9, accuracy: 0.5 }, { step: 0 });
      await store.logMetrics(run.id, { loss: 0.4, accuracy: 0.8 }, { step: 1 });
      await store.setTag(run.id, 'note', 'first try');
      await store.endRun(run.id, 'FINISHED');

      const done = await store.getRun(run.id);
      expect(done).toMatchObject({
        status: 'FINISHED',
        params: { optimizer: 'adam', lr: '0.001', augment: 'true' },
        metrics: { loss: 0.4, accuracy: 0.8 },
        tags: { team: 'x', note: 'first try' },
      });
      expect(done.endTime).toBeGreaterThanOrEqual(done.startTime);
    });

    it('refuses params, metrics, artifacts and a second end once ended, but takes tags', async () => {
      const run = await newRun('done');
      await store.endRun(run.id, 'KILLED');
      const file = writeFile(path.join(artifactRoot, 'x.txt'), 'x');
      for (const write of [
        () => store.logParams(run.id, { a: 1 }),
        () => store.logMetric(run.id, 'loss', 1),
        () => store.logMetrics(run.id, { loss: 1 }),
        () => store.logArtifact(run.id, file),
        () => store.endRun(run.id, 'FINISHED'),
        () => store.heartbeat(run.id),
      ])
        await expect(write()).rejects.toMatchObject({
          code: 'RUN_NOT_ACTIVE',
          message: expect.stringContaining(`run ${run.id} is KILLED`),
        });
      await store.setTag(run.id, 'reviewed', 'yes');
      expect((await store.getRun(run.id)).tags).toEqual({ reviewed: 'yes' });
    });

    it('refuses an unknown run, and a RUNNING end status', async () => {
      for (const id of ['nope', '0'.repeat(32), "'; drop table runs; --"])
        await expect(store.getRun(id)).rejects.toMatchObject({ code: 'RUN_NOT_FOUND' });
      await expect(store.logMetric('0'.repeat(32), 'loss', 1)).rejects.toMatchObject({
        code: 'RUN_NOT_FOUND',
      });
      const run = await newRun();
      await expect(store.endRun(run.id, 'RUNNING' as 'FINISHED')).rejects.toMatchObject({
        code: 'RUN_DATA_INVALID',
      });
    });

    it('soft-deletes a run: out of searches, refuses writes, restorable', async () => {
      const run = await newRun();
      await store.deleteRun(run.id);
      expect((await store.getRun(run.id)).lifecycle).toBe('deleted');
      expect((await store.searchRuns()).runs).toEqual([]);
      await expect(store.setTag(run.id, 'a', 'b')).rejects.toMatchObject({
        code: 'RUN_NOT_ACTIVE',
      });
      await expect(store.logMetric(run.id, 'a', 1)).rejects.toMatchObject({
        code: 'RUN_NOT_ACTIVE',
        message: expect.stringContaining('is deleted'),
      });
      await store.restoreRun(run.id);
      expect((await store.searchRuns()).runs).toHaveLength(1);
    });

    it('keeps trials as child runs of a tuning run', async () => {
      const parent = await newRun('tuning');
      const trials = [];
      for (let i = 0; i < 3; i++)
        trials.push(
          await store.createRun({
            experimentId: parent.experimentId,
            name: `trial-${i}`,
            parentRunId: parent.id,
            startTime: parent.startTime + i + 1,
          }),
        );
      expect((await store.listChildRuns(parent.id)).map((r) => r.name)).toEqual([
        'trial-0',
        'trial-1',
        'trial-2',
      ]);
      expect(trials[0]!.parentRunId).toBe(parent.id);
      await expect(
        store.createRun({ experimentId: parent.experimentId, parentRunId: 'f'.repeat(32) }),
      ).rejects.toMatchObject({ code: 'RUN_NOT_FOUND' });
    });

    it('heartbeat and every write refresh heartbeat_at', async () => {
      const run = await newRun();
      await new Promise((r) => setTimeout(r, 5));
      await store.heartbeat(run.id);
      const beat = (await store.getRun(run.id)).heartbeatAt!;
      expect(beat).toBeGreaterThan(run.heartbeatAt!);
      await new Promise((r) => setTimeout(r, 5));
      await store.logMetric(run.id, 'loss', 1);
      expect((await store.getRun(run.id)).heartbeatAt!).toBeGreaterThan(beat);
    });
  });

  describe('metrics', () => {
    it('keep the full history by step, and the latest is the highest step, then the newest', async () => {
      const run = await newRun();
      await store.logMetric(run.id, 'loss', 0.5, 2, 1000);
      await store.logMetric(run.id, 'loss', 0.9, 0, 3000);
      await store.logMetric(run.id, 'loss', 0.7, 1, 2000);
      expect((await store.getRun(run.id)).metrics.loss).toBe(0.5);
      await store.logMetric(run.id, 'loss', 0.45, 2, 1500);
      await store.logMetric(run.id, 'loss', 0.6, 2, 1200); // same step, older: not the latest
      expect((await store.getRun(run.id)).metrics.loss).toBe(0.45);
      expect(await store.getMetricHistory(run.id, 'loss')).toEqual([
        { key: 'loss', value: 0.9, step: 0, timestamp: 3000 },
        { key: 'loss', value: 0.7, step: 1, timestamp: 2000 },
        { key: 'loss', value: 0.5, step: 2, timestamp: 1000 },
        { key: 'loss', value: 0.6, step: 2, timestamp: 1200 },
        { key: 'loss', value: 0.45, step: 2, timestamp: 1500 },
      ]);
      expect(await store.getMetricHistory(run.id, 'accuracy')).toEqual([]);
    });

    it('store NaN and infinities faithfully, as MLflow accepts them', async () => {
      const run = await newRun();
      await store.logMetrics(run.id, [
        { key: 'nan', value: Number.NaN },
        { key: 'up', value: Infinity },
        { key: 'down', value: -Infinity },
        { key: 'tiny', value: 5e-324 },
      ]);
      const { metrics } = await store.getRun(run.id);
      expect(metrics.nan).toBeNaN();
      expect(metrics.up).toBe(Infinity);
      expect(metrics.down).toBe(-Infinity);
      expect(metrics.tiny).toBe(5e-324);
      expect((await store.getMetricHistory(run.id, 'nan'))[0]!.value).toBeNaN();
    });

    it('write a batch in one transaction: one bad entry writes nothing', async () => {
      const run = await newRun();
      await expect(
        store.logMetrics(run.id, [
          { key: 'loss', value: 1 },
          { key: 'bad key!', value: 2 },
        ]),
      ).rejects.toMatchObject({ code: 'RUN_DATA_INVALID' });
      await expect(store.logMetric(run.id, 'loss', 1, 1.5)).rejects.toMatchObject({
        code: 'RUN_DATA_INVALID',
        message: expect.stringContaining('whole number'),
      });
      await expect(store.logMetric(run.id, 'loss', '1' as unknown as number)).rejects.toMatchObject(
        {
          code: 'RUN_DATA_INVALID',
        },
      );
      expect(await store.getMetricHistory(run.id, 'loss')).toEqual([]);
    });
  });

  describe('params', () => {
    it('are immutable: the same value again is fine, another value is PARAM_CONFLICT', async () => {
      const run = await newRun();
      await store.logParams(run.id, { lr: 0.01, optimizer: 'adam' });
      await store.logParams(run.id, { lr: '0.01' });
      await expect(store.logParams(run.id, { epochs: 5, lr: 0.1 })).rejects.toMatchObject({
        code: 'PARAM_CONFLICT',
        message: expect.stringMatching(/param 'lr' .* is '0\.01'.*cannot become '0\.1'/),
      });
      // The batch is atomic: epochs was not logged either.
      expect((await store.getRun(run.id)).params).toEqual({ lr: '0.01', optimizer: 'adam' });
    });

    it('accept values up to 6000 characters, and keys with spaces, slashes and dots', async () => {
      const run = await newRun();
      await store.logParams(run.id, { long: 'v'.repeat(6000), 'model/conv 1.filters': 32 });
      await expect(store.logParams(run.id, { longer: 'v'.repeat(6001) })).rejects.toMatchObject({
        code: 'RUN_DATA_INVALID',
        message: expect.stringContaining('6001 characters; the limit is 6000'),
      });
      await expect(store.setTag(run.id, 'big', 't'.repeat(8001))).rejects.toMatchObject({
        code: 'RUN_DATA_INVALID',
      });
    });

    it.each(['', 'a;b', "x'y", '../up', '/abs', 'k'.repeat(251), 'new\nline'])(
      'refuse the key %j',
      async (key) => {
        const run = await newRun();
        await expect(store.logParams(run.id, { [key]: 1 })).rejects.toMatchObject({
          code: 'RUN_DATA_INVALID',
        });
        await expect(store.setTag(run.id, key, 'v')).rejects.toMatchObject({
          code: 'RUN_DATA_INVALID',
        });
      },
    );

    it('keep a key named __proto__ as data, not as a prototype', async () => {
      const run = await newRun();
      await store.logParams(run.id, JSON.parse('{"__proto__": "x"}') as Record<string, string>);
      const { params } = await store.getRun(run.id);
      expect(Object.keys(params)).toEqual(['__proto__']);
      expect(Object.getPrototypeOf(params)).toBe(Object.prototype);
    });
  });

  describe('artifacts', () => {
    it('are copied into the run folder, files and folders, under an artifact path', async () => {
      const run = await newRun();
      const source = path.join(artifactRoot, 'src');
      const file = writeFile(path.join(source, 'confusion.png'), 'png bytes');
      writeFile(path.join(source, 'model', 'model.json'), '{}');
      writeFile(path.join(source, 'model', 'weights.bin'), 'wwww');
      expect(await store.logArtifact(run.id, file)).toBe('confusion.png');
      expect(await store.logArtifact(run.id, path.join(source, 'model'), 'checkpoints/best')).toBe(
        'checkpoints/best/model',
      );
      expect(await store.listArtifacts(run.id)).toEqual([
        { path: 'checkpoints', isDir: true, bytes: null },
        { path: 'confusion.png', isDir: false, bytes: 9 },
      ]);
      expect(await store.listArtifacts(run.id, 'checkpoints/best/model')).toEqual([
        { path: 'checkpoints/best/model/model.json', isDir: false, bytes: 2 },
        { path: 'checkpoints/best/model/weights.bin', isDir: false, bytes: 4 },
      ]);
      const dir = await store.artifactPath(run.id);
      expect(dir).toBe(path.join(artifactRoot, String(run.experimentId), run.id, 'artifacts'));
      expect(fs.readFileSync(path.join(dir, 'confusion.png'), 'utf8')).toBe('png bytes');
    });

    it('refuse paths that leave the run folder and files that do not exist', async () => {
      const run = await newRun();
      const file = writeFile(path.join(artifactRoot, 'a.txt'), 'a');
      for (const bad of ['../../escape', '/etc', 'ok/../../..'])
        await expect(store.logArtifact(run.id, file, bad)).rejects.toMatchObject({
          code: 'RUN_ARTIFACT_INVALID',
        });
      await expect(store.listArtifacts(run.id, '..')).rejects.toMatchObject({
        code: 'RUN_ARTIFACT_INVALID',
      });
      await expect(
        store.logArtifact(run.id, path.join(artifactRoot, 'missing')),
      ).rejects.toMatchObject({ code: 'RUN_ARTIFACT_INVALID' });
      expect(await store.listArtifacts(run.id)).toEqual([]);
    });
  });
});
