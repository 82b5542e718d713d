import { describe, expect, it, vi } from 'vitest';
import { gridSearchTuner } from '../../plugins/tuners/grid-search.js';
import { hyperbandTuner } from '../../plugins/tuners/hyperband.js';
import { randomSearchTuner } from '../../plugins/tuners/random-search.js';
import {
  HyperParameters,
  type HpValue,
  type Oracle,
  type TrialProposal,
} from '../../plugin-api/plugin.js';
import { runTuning, type TuningState } from '../../training/tuning-loop.js';

function space() {
  const hp = new HyperParameters();
  hp.int('units', 8, 512, { step: 8 });
  hp.float('learning_rate', 1e-4, 1e-2, { sampling: 'log' });
  return hp.space;
}

const accuracy = (values: Record<string, HpValue>) =>
  1 - Math.abs((values.units as number) - 200) / 1000;

function randomOracle(maxTrials = 6): Oracle {
  return randomSearchTuner().createOracle({
    space: space(),
    objective: { name: 'val_accuracy', direction: 'max' },
    maxTrials,
    seed: 1,
  });
}

function hyperbandOracle(): Oracle {
  return hyperbandTuner().createOracle({
    space: space(),
    objective: { name: 'val_accuracy', direction: 'max' },
    maxEpochs: 9,
    factor: 3,
    seed: 1,
  });
}

/** A store that keeps only what saveState wrote, as a file would across a kill. */
function stateStore() {
  let saved: string | null = null;
  return {
    saveState: vi.fn((state: TuningState) => {
      saved = JSON.stringify(state);
    }),
    loadState: () => (saved === null ? null : (JSON.parse(saved) as TuningState)),
  };
}

const never = new Promise<never>(() => {});

describe('runTuning', () => {
  it('runs the oracle to the end, saving after every trial, and returns the best', async () => {
    const store = stateStore();
    const outcome = await runTuning({
      oracle: randomOracle(6),
      runTrial: async (p) => ({ score: accuracy(p.values), epochs: 2 }),
      ...store,
    });
    expect(outcome.trials).toHaveLength(6);
    expect(outcome.aborted).toBe(false);
    expect(store.saveState).toHaveBeenCalledTimes(6);
    const best = Math.max(...outcome.trials.map((t) => t.score!));
    expect(outcome.best?.score).toBe(best);
    expect(store.loadState()?.trials.map((t) => t.trialId)).toEqual(
      outcome.trials.map((t) => t.trialId),
    );
  });

  it('averages executions per trial', async () => {
    const calls: number[] = [];
    const outcome = await runTuning({
      oracle: randomOracle(2),
      runTrial: async (_p, execution) => {
        calls.push(execution);
        return { score: execution, epochs: 3 + execution };
      },
      saveState: () => {},
      executionsPerTrial: 3,
    });
    expect(calls).toEqual([0, 1, 2, 0, 1, 2]);
    expect(outcome.trials.map((t) => [t.score, t.epochs, t.executionScores])).toEqual([
      [1, 5, [0, 1, 2]],
      [1, 5, [0, 1, 2]],
    ]);
  });

  it.each([
    ['random search', () => randomOracle(8)],
    ['hyperband', hyperbandOracle],
  ])('resumes after a kill without rerunning a finished trial (%s)', async (_name, makeOracle) => {
    const runs = new Map<string, number>();
    const count = (p: TrialProposal) => runs.set(p.trialId, (runs.get(p.trialId) ?? 0) + 1);
    const store = stateStore();

    // First process: killed in the middle of its 5th trial (the promise never settles).
    let started = 0;
    void runTuning({
      oracle: makeOracle(),
      runTrial: (p) => {
        count(p);
        if (++started === 5) return never;
        return Promise.resolve({ score: accuracy(p.values), epochs: p.epochs ?? 1 });
      },
      ...store,
    });
    await vi.waitFor(() => expect(started).toBe(5));
    const killedAt = [...runs.keys()][4]!;
    expect(store.loadState()?.trials).toHaveLength(4);

    // Second process: a fresh oracle, resumed from what was saved.
    const outcome = await runTuning({
      oracle: makeOracle(),
      runTrial: async (p) => {
        count(p);
        return { score: accuracy(p.values), epochs: p.epochs ?? 1 };
      },
      ...store,
    });

    // The uninterrupted search, for comparison.
    const reference = await runTuning({
      oracle: makeOracle(),
      runTrial: async (p) => ({ score: accuracy(p.values), epochs: p.epochs ?? 1 }),
      saveState: () => {},
    });

    expect(outcome.trials.map((t) => [t.trialId, t.values, t.score])).toEqual(
      reference.trials.map((t) => [t.trialId, t.values, t.score]),
    );
    for (const [trialId, n] of runs)
      expect([trialId, n]).toEqual([trialId, trialId === killedAt ? 2 : 1]);
    expect(runs.size).toBe(reference.trials.length);
  });

  it('never reruns a saved trial even if the oracle state lags behind', async () => {
    const store = stateStore();
    await runTuning({
      oracle: randomOracle(3),
      runTrial: async (p) => ({ score: accuracy(p.values), epochs: 1 }),
      ...store,
    });
    // Pretend the oracle's state was written before its last trial was reported.
    const lagging = randomOracle(3);
    lagging.next();
    lagging.report({ ...store.loadState()!.trials[0]!, status: 'COMPLETED' });
    lagging.next();
    lagging.report({ ...store.loadState()!.trials[1]!, status: 'COMPLETED' });
    const state = { ...store.loadState()!, oracle: lagging.state() };
    const runTrial = vi.fn(async () => ({ score: 0, epochs: 1 }));
    const outcome = await runTuning({
      oracle: randomOracle(3),
      runTrial,
      saveState: () => {},
      loadState: () => state,
    });
    expect(runTrial).not.toHaveBeenCalled();
    expect(outcome.trials).toHaveLength(3);
  });

  it('records failures, counts them, and stops after too many in a row', async () => {
    const store = stateStore();
    let n = 0;
    const run = runTuning({
      oracle: randomOracle(10),
      runTrial: async (p) => {
        n++;
        if (n === 2 || n >= 4) throw new Error('out of memory');
        return { score: accuracy(p.values), epochs: 1 };
      },
      maxConsecutiveFailedTrials: 3,
      ...store,
    });
    await expect(run).rejects.toMatchObject({
      code: 'TUNING_TOO_MANY_FAILURES',
      message: expect.stringMatching(/3 trials in a row failed .*trial-0006: out of memory/),
    });
    const saved = store.loadState()!;
    expect(saved.trials.map((t) => t.status)).toEqual([
      'COMPLETED',
      'FAILED',
      'COMPLETED',
      'FAILED',
      'FAILED',
      'FAILED',
    ]);
    expect(saved.trials[1]).toMatchObject({ error: 'out of memory', executionScores: [] });

    // Fixed, resumed: the failed trials count against the budget and are not rerun.
    const runTrial = vi.fn(async (p: TrialProposal) => ({ score: accuracy(p.values), epochs: 1 }));
    const outcome = await runTuning({ oracle: randomOracle(10), runTrial, ...store });
    expect(runTrial).toHaveBeenCalledTimes(4);
    expect(outcome.trials).toHaveLength(10);
  });

  it('treats a non-finite score as a failed trial', async () => {
    const outcome = await runTuning({
      oracle: randomOracle(2),
      runTrial: async () => ({ score: Number.NaN, epochs: 1 }),
      saveState: () => {},
    });
    expect(outcome.trials.map((t) => t.status)).toEqual(['FAILED', 'FAILED']);
    expect(outcome.best).toBeNull();
  });

  it('stops cleanly on abort, passing the signal on, and reruns the interrupted trial', async () => {
    const controller = new AbortController();
    const store = stateStore();
    const seen: (AbortSignal | undefined)[] = [];
    let n = 0;
    const outcome = await runTuning({
      oracle: randomOracle(6),
      runTrial: async (p, _execution, signal) => {
        seen.push(signal);
        if (++n === 3) {
          controller.abort();
          throw new Error('training stopped');
        }
        return { score: accuracy(p.values), epochs: 1 };
      },
      signal: controller.signal,
      ...store,
    });
    expect(outcome.aborted).toBe(true);
    expect(outcome.trials).toHaveLength(2);
    expect(seen.every((s) => s === controller.signal)).toBe(true);
    expect(store.saveState).toHaveBeenCalledTimes(2);

    const ids: string[] = [];
    const resumed = await runTuning({
      oracle: randomOracle(6),
      runTrial: async (p) => {
        ids.push(p.trialId);
        return { score: accuracy(p.values), epochs: 1 };
      },
      ...store,
    });
    expect(ids).toEqual(['trial-0003', 'trial-0004', 'trial-0005', 'trial-0006']);
    expect(resumed.trials).toHaveLength(6);
  });

  it('does not start when already aborted', async () => {
    const runTrial = vi.fn();
    const outcome = await runTuning({
      oracle: randomOracle(3),
      runTrial,
      saveState: () => {},
      signal: AbortSignal.abort(),
    });
    expect(outcome).toMatchObject({ aborted: true, trials: [] });
    expect(runTrial).not.toHaveBeenCalled();
  });

  it('refuses a corrupt or foreign saved state', async () => {
    const base = { runTrial: vi.fn(), saveState: () => {} };
    await expect(
      runTuning({ ...base, oracle: randomOracle(), loadState: () => ({ nope: 1 }) as never }),
    ).rejects.toMatchObject({ code: 'TUNING_STATE_INVALID' });
    const gridState = gridSearchTuner()
      .createOracle({ space: space(), objective: { name: 'a', direction: 'max' } })
      .state();
    await expect(
      runTuning({
        ...base,
        oracle: randomOracle(),
        loadState: () => ({ version: 1, oracle: gridState, trials: [] }),
      }),
    ).rejects.toMatchObject({ code: 'TUNING_STATE_INVALID' });
  });

  it('refuses bad loop options with CONFIG_INVALID', async () => {
    await expect(
      runTuning({
        oracle: randomOracle(),
        runTrial: vi.fn(),
        saveState: () => {},
        executionsPerTrial: 0,
      }),
    ).rejects.toMatchObject({ code: 'CONFIG_INVALID' });
  });
});
