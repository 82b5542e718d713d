import { spawnSync } from 'node:child_process';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { OpenDatabase } from '../../data/database.js';
import {
  createModelEvaluations,
  type EvaluationResult,
  type ModelEvaluations,
} from '../../registry/model-evaluations.js';
import type { ModelRegistry } from '../../registry/model-registry.js';
import { expectCode, openMemoryRegistry, seed } from '../helpers/registry.js';

const RESULT: EvaluationResult = {
  imageCount: 3,
  datasetSha256: 'a'.repeat(64),
  scores: {
    loss: 0.4,
    accuracy: 2 / 3,
    perClass: [],
    macroPrecision: 0.5,
    macroRecall: 0.5,
    macroF1: 0.5,
    confusionMatrix: [
      [1, 1],
      [0, 1],
    ],
    labels: ['cat', 'dog'],
    calibration: { ece: 0.1, bins: [] },
  },
  unreadable: [{ path: '/data/cat/x.jpg', reason: 'empty', detail: 'the file is empty (0 bytes)' }],
  unknownLabels: [{ label: 'fox', count: 2 }],
  worstErrors: [
    {
      rank: 1,
      source: '/data/cat/y.jpg',
      imageId: null,
      blobUri: `blob:ab/cd/${'b'.repeat(64)}.jpg`,
      sha256: 'b'.repeat(64),
      format: 'jpeg',
      trueLabel: 'cat',
      predictedLabel: 'dog',
      confidence: 0.875,
      probabilities: [0.125, 0.875],
    },
  ],
  confusionMatrixUri: `blob:cd/ef/${'c'.repeat(64)}.png`,
};

describe('model evaluations (stored with their version)', () => {
  let database: OpenDatabase;
  let registry: ModelRegistry;
  let evaluations: ModelEvaluations;
  let clock = 1_800_000_000_000;

  beforeEach(async () => {
    ({ database, registry } = await openMemoryRegistry());
    evaluations = createModelEvaluations({ db: database.db, user: 'tester', now: () => ++clock });
    await seed(registry, { stages: ['None', 'None'] });
  });
  afterEach(() => database.close());

  const start = (version = 1, source = 'val') =>
    evaluations.start({ name: 'faces', version, dataset: { kind: 'split', source } });

  it('goes RUNNING → FINISHED with its metrics, files left out and worst errors', async () => {
    const running = await start();
    expect(running).toMatchObject({
      name: 'faces',
      version: 1,
      status: 'RUNNING',
      dataset: { kind: 'split', source: 'val', imageCount: 0, sha256: null },
      scores: null,
      createdBy: 'tester',
      finishedAt: null,
    });
    expect(running.id).toMatch(/^[0-9a-f]{32}$/);
    await evaluations.progress(running.id, 2, 5);
    expect(await evaluations.get(running.id)).toMatchObject({ done: 2, total: 5 });
    const finished = await evaluations.finish(running.id, RESULT);
    expect(finished).toMatchObject({
      status: 'FINISHED',
      dataset: { imageCount: 3, sha256: 'a'.repeat(64) },
      scores: RESULT.scores,
      unreadable: RESULT.unreadable,
      unknownLabels: RESULT.unknownLabels,
      worstErrors: RESULT.worstErrors,
      confusionMatrixUri: RESULT.confusionMatrixUri,
    });
    expect(finished.finishedAt).toBeGreaterThan(finished.createdAt);
    // Ended once: a second finish or end changes nothing.
    await expectCode(evaluations.finish(running.id, RESULT), 'EVALUATION_NOT_FOUND');
    expect(await evaluations.end(running.id, 'FAILED', 'late')).toEqual(finished);
  });

  it("lists a version's evaluations newest first, and only that version's", async () => {
    const a = await start(1, 'val');
    const b = await start(1, 'test');
    await start(2, 'val');
    expect((await evaluations.list('faces', 1)).map((e) => e.id)).toEqual([b.id, a.id]);
    await expectCode(evaluations.list('faces', 9), 'MODEL_VERSION_NOT_FOUND');
    await expectCode(evaluations.get('0'.repeat(32)), 'EVALUATION_NOT_FOUND');
    await expectCode(evaluations.get('../etc/passwd'), 'EVALUATION_NOT_FOUND');
  });

  it('ends FAILED or KILLED with the reason and what is known of the files', async () => {
    const e = await start();
    const ended = await evaluations.end(e.id, 'KILLED', 'cancelled', {
      unreadable: RESULT.unreadable,
    });
    expect(ended).toMatchObject({ status: 'KILLED', error: 'cancelled', scores: null });
    expect(ended.unreadable).toEqual(RESULT.unreadable);
  });

  it('goes with its version when the version is deleted', async () => {
    const e = await start(2);
    await evaluations.finish(e.id, RESULT);
    await registry.deleteModelVersion('faces', 2);
    await expectCode(evaluations.get(e.id), 'EVALUATION_NOT_FOUND');
    const left = await database.db.selectFrom('model_evaluation_errors').selectAll().execute();
    expect(left).toEqual([]);
  });

  it('fails an evaluation whose process is gone, and leaves a live one running', async () => {
    const dead = await start();
    const live = await start();
    // A pid that existed and exited: the child has been reaped by the time spawnSync returns.
    const gone = spawnSync(process.execPath, ['-e', '0']).pid!;
    await database.db
      .updateTable('model_evaluations')
      .set({ owner_pid: gone })
      .where('id', '=', dead.id)
      .execute();
    expect(await evaluations.failStale()).toEqual([dead.id]);
    expect(await evaluations.get(dead.id)).toMatchObject({
      status: 'FAILED',
      error: expect.stringContaining(`process ${gone}`),
    });
    expect((await evaluations.get(live.id)).status).toBe('RUNNING');
  });
});
