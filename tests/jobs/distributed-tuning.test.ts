import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openWorkspace, type Workspace } from '../../cli/workspace.js';
import { jobContext } from '../../cli/commands/train.js';
import {
  cancelSearch,
  claimTrial,
  finishTrial,
  recordTrialRun,
  searchProgress,
  startDistributedTuning,
} from '../../jobs/distributed-tuning.js';
import { runTuning } from '../../training/tuning-loop.js';
import { HyperParameters } from '../../plugin-api/hyperparameters.js';
import type { JobContext } from '../../jobs/tracked-training.js';
import { databaseBackend, DATABASE_BACKENDS, SERVICE_START_TIMEOUT } from '../helpers/backends.js';
import { tempDir } from '../helpers/fixtures.js';

const FIXTURE_CONFIG = path.resolve(
  import.meta.dirname,
  '../fixtures/plugins/menagerie.config.json',
);

/** A score that depends only on the values, so any order of reports ranks trials alike. */
const scoreOf = (values: Record<string, unknown>) =>
  Number(values.units) / 32 + Number(values.learning_rate);

// The oracle's state in the database, driven as workers would drive it: claims and reports
// in any order, twice over, and at once. No training: the reports carry scores.
describe.each(DATABASE_BACKENDS)('distributed tuning on %s', (backendName) => {
  const backend = databaseBackend(backendName);
  const { dir, remove } = tempDir('menagerie-dtune-');
  let workspace: Workspace;
  let context: JobContext;
  beforeAll(async () => {
    const database = await backend.location({ fresh: true });
    workspace = await openWorkspace({
      dataDir: dir,
      config: FIXTURE_CONFIG,
      ...(database && { database }),
    });
    context = jobContext(workspace);
  }, SERVICE_START_TIMEOUT);
  afterAll(async () => {
    await workspace?.close();
    remove();
  });

  const report = (runId: string, trialId: string, values: Record<string, unknown>) =>
    finishTrial(context, runId, trialId, {
      status: 'COMPLETED',
      score: scoreOf(values),
      epochs: 1,
    });

  it('keeps N trials in flight, counts a trial reported twice once, and ends the run', async () => {
    const { runId, queued } = await startDistributedTuning(context, {
      plugin: 'tiny-mlp',
      tuner: 'random',
      maxTrials: 5,
      epochs: 1,
      parallelism: 2,
    });
    expect(queued).toEqual(['trial-0001', 'trial-0002']);

    const first = await claimTrial(context.db, runId, 'trial-0001');
    expect(first?.trial.attempts).toBe(1);
    await recordTrialRun(context.db, runId, 'trial-0001', 'lost-attempt');
    // Its worker was lost: the queue hands the job to another, which takes the trial over.
    const takeover = await claimTrial(context.db, runId, 'trial-0001');
    expect(takeover?.trial.attempts).toBe(2);
    expect(takeover?.earlierRuns).toEqual(['lost-attempt']);

    const after = await report(runId, 'trial-0001', first!.trial.values);
    // Trial 2 waits for a worker still; trial 3 takes trial 1's place.
    expect(after.queued).toEqual(['trial-0002', 'trial-0003']);
    // A second report (a duplicate job) changes nothing, and the trial is not claimed again.
    expect((await report(runId, 'trial-0001', first!.trial.values)).queued).toEqual([
      'trial-0002',
      'trial-0003',
    ]);
    expect(await claimTrial(context.db, runId, 'trial-0001')).toBeNull();

    for (const id of ['trial-0002', 'trial-0003', 'trial-0004', 'trial-0005']) {
      const claimed = await claimTrial(context.db, runId, id);
      expect(claimed, id).not.toBeNull();
      await report(runId, id, claimed!.trial.values);
    }
    const end = await searchProgress(context.db, runId);
    expect(end.done).toBe(true);
    expect(end.status).toBe('FINISHED');
    expect(end.trials.map((t) => [t.trialId, t.status])).toEqual(
      ['trial-0001', 'trial-0002', 'trial-0003', 'trial-0004', 'trial-0005'].map((id) => [
        id,
        'COMPLETED',
      ]),
    );
    const run = await context.tracking.getRun(runId);
    expect(run.status).toBe('FINISHED');
    const best = end.trials.reduce((a, b) => (b.score! > a.score! ? b : a));
    expect(run.tags['menagerie.best_trial']).toBe(best.trialId);
  });

  it('loses no report when workers report at once', async () => {
    const { runId, queued } = await startDistributedTuning(context, {
      plugin: 'tiny-mlp',
      tuner: 'random',
      maxTrials: 6,
      epochs: 1,
      parallelism: 6,
    });
    expect(queued).toHaveLength(6);
    const claims = await Promise.all(queued.map((id) => claimTrial(context.db, runId, id)));
    await Promise.all(claims.map((c) => report(runId, c!.trial.trialId, c!.trial.values)));
    const end = await searchProgress(context.db, runId);
    expect(end.trials.filter((t) => t.status === 'COMPLETED')).toHaveLength(6);
    expect(end.status).toBe('FINISHED');
  });

  it('runs Hyperband’s whole schedule with trials in flight, promoting only finished trials', async () => {
    const options = { maxEpochs: 9, factor: 3 };
    // The same search run one trial at a time, for the schedule to compare with.
    const hp = new HyperParameters();
    context.plugins.get('model', 'tiny-mlp').space(hp);
    const sequential = await runTuning({
      oracle: context.plugins.get('tuner', 'hyperband').createOracle({
        space: hp.space,
        objective: { name: 'val_accuracy', direction: 'max' },
        seed: 42,
        ...options,
      }),
      runTrial: async (p) => ({ score: scoreOf(p.values), epochs: p.epochs ?? 1 }),
      saveState: () => {},
    });

    const { runId, queued } = await startDistributedTuning(context, {
      plugin: 'tiny-mlp',
      tuner: 'hyperband',
      tunerOptions: options,
      epochs: 9,
      parallelism: 3,
    });
    const pending = [...queued];
    const done = new Set<string>();
    while (pending.length > 0) {
      // The newest first: reports arrive out of proposal order.
      const id = pending.pop()!;
      const claimed = await claimTrial(context.db, runId, id);
      expect(claimed, id).not.toBeNull();
      if (claimed!.trial.warmStartFrom) {
        expect(done.has(claimed!.trial.warmStartFrom)).toBe(true);
        expect(claimed!.trialRuns[claimed!.trial.warmStartFrom]).toBeDefined();
      }
      await recordTrialRun(context.db, runId, id, `run-${id}`);
      const next = await report(runId, id, claimed!.trial.values);
      done.add(id);
      for (const q of next.queued) if (!pending.includes(q)) pending.push(q);
    }
    const end = await searchProgress(context.db, runId);
    expect(end.status).toBe('FINISHED');
    expect(end.trials).toHaveLength(sequential.trials.length);
    // Same brackets: as many trials per budget as one at a time.
    const budgets = (epochs: (number | undefined)[]) =>
      epochs.reduce<Record<string, number>>(
        (n, e) => ({ ...n, [String(e)]: (n[String(e)] ?? 0) + 1 }),
        {},
      );
    expect(budgets(end.trials.map((t) => t.epochs))).toEqual(
      budgets(sequential.trials.map((t) => t.epochs)),
    );
  });

  it('runs Bayesian optimisation with trials in flight, never proposing a running configuration', async () => {
    const { runId, queued } = await startDistributedTuning(context, {
      plugin: 'tiny-mlp',
      tuner: 'bayesian',
      tunerOptions: { numInitialPoints: 2 },
      maxTrials: 7,
      epochs: 1,
      parallelism: 3,
    });
    const pending = [...queued];
    while (pending.length > 0) {
      const id = pending.shift()!;
      const claimed = await claimTrial(context.db, runId, id);
      const next = await report(runId, id, claimed!.trial.values);
      for (const q of next.queued) if (!pending.includes(q)) pending.push(q);
    }
    const end = await searchProgress(context.db, runId);
    expect(end.status).toBe('FINISHED');
    expect(end.trials).toHaveLength(7);
    const configs = new Set(end.trials.map((t) => JSON.stringify(t.values)));
    expect(configs.size).toBe(7);
  });

  it('stops proposing when cancelled and ends once the trials in flight do', async () => {
    const { runId, queued } = await startDistributedTuning(context, {
      plugin: 'tiny-mlp',
      tuner: 'random',
      maxTrials: 6,
      epochs: 1,
      parallelism: 2,
    });
    const claimed = await claimTrial(context.db, runId, queued[0]!);
    const cancelled = await cancelSearch(context, runId);
    expect(cancelled).toMatchObject({ queued: [], done: false, status: 'KILLED' });
    expect(await claimTrial(context.db, runId, queued[1]!)).toBeNull();
    const last = await report(runId, queued[0]!, claimed!.trial.values);
    expect(last).toMatchObject({ queued: [], done: true, status: 'KILLED' });
    expect((await context.tracking.getRun(runId)).status).toBe('KILLED');
  });

  it('resumes a search: trials left running are queued again', async () => {
    const { runId, queued } = await startDistributedTuning(context, {
      plugin: 'tiny-mlp',
      tuner: 'random',
      maxTrials: 3,
      epochs: 1,
      parallelism: 2,
    });
    const a = await claimTrial(context.db, runId, queued[0]!);
    await report(runId, queued[0]!, a!.trial.values);
    await claimTrial(context.db, runId, queued[1]!);
    // The whole cluster stopped with trial 2 running; its run was marked FAILED meanwhile.
    await context.tracking.endRun(runId, 'FAILED');
    const resumed = await startDistributedTuning(context, {
      plugin: 'tiny-mlp',
      tuner: 'random',
      parallelism: 2,
      resume: runId,
    });
    expect(resumed.queued).toEqual(['trial-0002', 'trial-0003']);
    expect((await context.tracking.getRun(runId)).status).toBe('RUNNING');
  });
});
