import { randomBytes } from 'node:crypto';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { jobContext } from '../../cli/commands/train.js';
import { openWorkspace, type Workspace } from '../../cli/workspace.js';
import { ingestImages } from '../../data/ingest/ingest.js';
import { writeDemoDataset } from '../../demo/demo-dataset.js';
import {
  createQueueJobRunner,
  queueConfigFromEnv,
  type QueueConfig,
} from '../../jobs/job-queue.js';
import type { JobRunner } from '../../jobs/job-runner.js';
import { startQueueWorker, type QueueWorker } from '../../jobs/queue-worker.js';
import type { RunProgressUpdate } from '../../jobs/run-progress.js';
import { createModelEvaluations } from '../../registry/model-evaluations.js';
import { SERVICE_START_TIMEOUT, serviceEnv } from '../helpers/backends.js';
import { tempDir } from '../helpers/fixtures.js';
import { waitFor } from '../helpers/wait-for.js';

const FIXTURE_CONFIG = path.resolve(
  import.meta.dirname,
  '../fixtures/plugins/menagerie.config.json',
);

// The queue runner of two "replicas" and one worker, in this process, on a real Redis and
// one SQLite workspace: jobs go through BullMQ, progress comes back through QueueEvents,
// a cancel reaches the worker, and the job limit counts what either replica started.
describe('jobs through the BullMQ queue', () => {
  const { dir, remove } = tempDir('menagerie-queue-');
  let workspace: Workspace;
  let worker: QueueWorker;
  const replicas: { jobs: JobRunner; updates: RunProgressUpdate[] }[] = [];

  beforeAll(async () => {
    const queue: QueueConfig = {
      url: (await serviceEnv('redis')).MENAGERIE_QUEUE_URL!,
      prefix: `t${randomBytes(4).toString('hex')}`,
    };
    workspace = await openWorkspace({ dataDir: dir, config: FIXTURE_CONFIG });
    await writeDemoDataset({ dir: path.join(dir, 'src'), perClass: 6, size: 32, seed: 'q' });
    await ingestImages(workspace, { source: path.join(dir, 'src') });
    const evaluations = createModelEvaluations({ db: workspace.database.db });
    for (let i = 0; i < 2; i++) {
      const updates: RunProgressUpdate[] = [];
      const jobs = createQueueJobRunner({
        queue,
        context: jobContext(workspace),
        evaluations,
        publish: (u) => updates.push(u),
        config: { maxJobs: 1, killGraceMs: 20_000 },
      });
      replicas.push({ jobs, updates });
    }
    worker = startQueueWorker({
      queue,
      context: jobContext(workspace),
      evaluations,
      dataDir: dir,
      configFile: FIXTURE_CONFIG,
    });
    await worker.ready();
  }, SERVICE_START_TIMEOUT);

  afterAll(async () => {
    await Promise.all(replicas.map((r) => r.jobs.shutdown()));
    await worker?.close();
    await workspace?.close();
    remove();
  });

  it('runs a job on the worker; both replicas see its progress; a cancel through the other stops it', async () => {
    const [a, b] = replicas as [(typeof replicas)[0], (typeof replicas)[0]];
    // Holds from epoch 2 until cancelled: it cannot finish before the cancel.
    const runId = await a.jobs.startTraining({
      plugin: 'tiny-mlp-held',
      epochs: 50,
      experiment: 'queue',
    });
    expect((await workspace.tracking.getRun(runId)).status).toBe('RUNNING');
    await waitFor(
      () => b.updates.some((u) => u.runId === runId && u.epoch === 2 && u.batch === null),
      'epoch 2 on the other replica',
      60_000,
    );

    // The cluster runs one job at most: the other replica is refused too.
    await expect(
      b.jobs.startTraining({ plugin: 'tiny-mlp', epochs: 1, experiment: 'queue' }),
    ).rejects.toMatchObject({ code: 'JOB_LIMIT' });

    await b.jobs.cancel(runId);
    expect((await workspace.tracking.getRun(runId)).status).toBe('KILLED');
    for (const r of [a, b]) {
      await waitFor(
        () => r.updates.find((u) => u.runId === runId && u.final),
        'the final update on each replica',
      );
      expect(r.updates.find((u) => u.final)).toMatchObject({ status: 'KILLED' });
    }
  }, 120_000);

  it('two replicas starting at the same instant: the cluster admits one, the other is JOB_LIMIT', async () => {
    const [a, b] = replicas as [(typeof replicas)[0], (typeof replicas)[0]];
    const job = { plugin: 'tiny-mlp', epochs: 1, experiment: 'queue-race' };
    const outcomes = await Promise.allSettled([
      a.jobs.startTraining(job),
      b.jobs.startTraining(job),
    ]);
    const admitted = outcomes.filter((o) => o.status === 'fulfilled');
    const refused = outcomes.filter((o) => o.status === 'rejected');
    expect(admitted).toHaveLength(1);
    expect(refused).toHaveLength(1);
    expect((refused[0] as PromiseRejectedResult).reason).toMatchObject({ code: 'JOB_LIMIT' });
    const runId = (admitted[0] as PromiseFulfilledResult<string>).value;
    await waitFor(
      async () => (await workspace.tracking.getRun(runId)).status === 'FINISHED',
      'the admitted run to finish',
      60_000,
    );
  }, 120_000);

  it('ingests a folder on the worker and answers with its summary, or its error code', async () => {
    const jobs = replicas[0]!.jobs as ReturnType<typeof createQueueJobRunner>;
    await writeDemoDataset({ dir: path.join(dir, 'more'), perClass: 2, size: 32, seed: 'more' });
    expect(await jobs.ingest(path.join(dir, 'more'))).toMatch(/^added 6 of 6 files from /);
    await expect(jobs.ingest(path.join(dir, 'nowhere'))).rejects.toMatchObject({
      code: 'INGEST_SOURCE_NOT_FOUND',
    });
  }, 60_000);

  it('says which variable is wrong', () => {
    expect(queueConfigFromEnv({})).toBeNull();
    expect(() =>
      queueConfigFromEnv({ MENAGERIE_QUEUE_URL: 'redis://x', MENAGERIE_QUEUE_LOCK_MS: 'soon' }),
    ).toThrow(/MENAGERIE_QUEUE_LOCK_MS should be whole milliseconds/);
  });
});
