import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isMenagerieError } from '../../core/errors.js';
import type { EvaluationProgressUpdate } from '../../jobs/evaluation-progress.js';
import { createJobRunner, type JobRunner } from '../../jobs/job-runner.js';
import { createModelEvaluations, type ModelEvaluations } from '../../registry/model-evaluations.js';
import { seed } from '../helpers/registry.js';
import { createModelRegistry } from '../../registry/model-registry.js';
import { tempWorkspace } from '../helpers/workspace.js';

const FAKE_CLI = path.resolve(import.meta.dirname, '../fixtures/jobs/fake-evaluate.mjs');

/**
 * The job runner's side of evaluation jobs, with a stand-in child that ends the way each
 * test needs: the evaluation a child leaves RUNNING is ended from the database, and its last
 * progress update says how.
 */
describe('evaluation jobs in child processes', () => {
  let ws: Awaited<ReturnType<typeof tempWorkspace>>;
  let evaluations: ModelEvaluations;
  let jobs: JobRunner;
  const updates: EvaluationProgressUpdate[] = [];
  const finals = new Map<string, (u: EvaluationProgressUpdate) => void>();
  const finalOf = (id: string) =>
    new Promise<EvaluationProgressUpdate>((resolve) => finals.set(id, resolve));

  beforeAll(async () => {
    ws = await tempWorkspace();
    await seed(createModelRegistry({ db: ws.database.db }), { stages: ['None'] });
    evaluations = createModelEvaluations({ db: ws.database.db });
    jobs = createJobRunner({
      dataDir: ws.dataDir,
      tracking: ws.tracking,
      publish: () => {},
      evaluations,
      publishEvaluation: (u) => {
        updates.push(u);
        if (u.final) finals.get(u.evaluationId)?.(u);
      },
      config: { maxJobs: 1, killGraceMs: 20_000 },
      cli: FAKE_CLI,
    });
  });
  afterAll(async () => {
    await jobs?.shutdown();
    await ws?.dispose();
  });

  const running = () =>
    evaluations.start({ name: 'faces', version: 1, dataset: { kind: 'split', source: 'val' } });

  it('ends FAILED an evaluation whose child exits without ending it, and says so last', async () => {
    const { id } = await running();
    process.env.FAKE_EVALUATE = 'announce-exit';
    process.env.FAKE_EVALUATION_ID = id;
    const final = finalOf(id);
    expect(await jobs.startEvaluation({ model: 'models:/faces/1', data: { split: 'val' } })).toBe(
      id,
    );
    expect(await final).toMatchObject({ evaluationId: id, status: 'FAILED', final: true });
    expect(updates.filter((u) => u.evaluationId === id).map((u) => u.done)).toEqual([0, 1, 0]);
    expect(await evaluations.get(id)).toMatchObject({
      status: 'FAILED',
      error: 'the job exited (code 3)',
    });
    expect(jobs.running()).toEqual([]);
  });

  it("fails the start with the child's code when it refuses before any evaluation", async () => {
    process.env.FAKE_EVALUATE = 'refuse';
    const error = await jobs
      .startEvaluation({ model: 'models:/faces/1', data: { split: 'test' } })
      .catch((e: unknown) => e);
    expect(isMenagerieError(error, 'DATASET_EMPTY')).toBe(true);
    expect(jobs.running()).toEqual([]);
  });

  it('holds the one job slot while it runs; a stopped evaluation ends KILLED', async () => {
    const { id } = await running();
    process.env.FAKE_EVALUATE = 'announce-hold';
    process.env.FAKE_EVALUATION_ID = id;
    const final = finalOf(id);
    await jobs.startEvaluation({ model: 'models:/faces/1', data: { folder: '/srv/holdout' } });
    expect(jobs.running()).toEqual([{ id, kind: 'evaluation', pid: expect.any(Number) }]);
    const second = await Promise.resolve()
      .then(() => jobs.startEvaluation({ model: 'models:/faces/1', data: { split: 'val' } }))
      .catch((e: unknown) => e);
    expect(isMenagerieError(second, 'JOB_LIMIT')).toBe(true);
    // The child waits for the signal: it cannot end before the stop lands.
    await jobs.shutdown();
    expect(await final).toMatchObject({ status: 'KILLED', message: 'cancelled' });
    expect((await evaluations.get(id)).status).toBe('KILLED');
  });
});
