import { MenagerieError } from '../core/errors.js';
import type { HpValue, Oracle, TrialProposal } from '../plugin-api/plugin.js';
import { configKey } from '../plugin-api/search-space.js';

/** One finished trial: what ran, how it went, and each execution's score. */
export interface TuningTrial {
  trialId: string;
  values: Record<string, HpValue>;
  status: 'COMPLETED' | 'FAILED';
  /** Mean objective over the executions; absent when the trial failed. */
  score?: number;
  /** Epochs trained (the largest over executions). */
  epochs?: number;
  executionScores: number[];
  /** Why the trial failed. */
  error?: string;
  warmStartFrom?: string;
  initialEpoch?: number;
}

/** Everything needed to resume, written after every trial. JSON-safe. */
export interface TuningState {
  version: 1;
  /** The oracle's own `state()`. */
  oracle: unknown;
  /** Finished trials in order; none of them is ever run again. */
  trials: TuningTrial[];
}

export interface RunTuningOptions {
  oracle: Oracle;
  /**
   * Trains one execution of a proposal and returns its objective value. Throwing marks
   * the trial FAILED (unless the signal was aborted: then the trial is rerun on resume).
   */
  runTrial(
    proposal: TrialProposal,
    execution: number,
    signal?: AbortSignal,
  ): Promise<{ score: number; epochs: number }>;
  /** Persists the state; called after every trial, before the next one starts. */
  saveState(state: TuningState): void | Promise<void>;
  /** The state saved by an earlier run, to resume it; nothing to start afresh. */
  loadState?(): TuningState | null | undefined | Promise<TuningState | null | undefined>;
  /** Runs per trial, averaged to smooth out the noise of random initialisation. */
  executionsPerTrial?: number;
  maxConsecutiveFailedTrials?: number;
  /** Ranks the trials; defaults to the oracle's `direction`. */
  direction?: 'min' | 'max';
  /** Called after each trial is saved (progress bars, child runs, results tables). */
  onTrialEnd?(trial: TuningTrial): void | Promise<void>;
  signal?: AbortSignal;
}

export interface TuningOutcome {
  /** Every finished trial, earlier runs' included, in order. */
  trials: TuningTrial[];
  best: TuningTrial | null;
  /** True when the signal stopped the search before the oracle was done. */
  aborted: boolean;
}

/**
 * Asks the oracle for trials, runs them, reports back and saves after every trial. On
 * resume a finished trial is never run again (KerasTuner reruns them); the trial that was
 * running when the process died is rerun from scratch.
 *
 * ```ts
 * import { runTuning } from './training/tuning-loop.js';
 *
 * const outcome = await runTuning({
 *   oracle: tuner.createOracle({ space, objective: { name: 'val_accuracy', direction: 'max' } }),
 *   runTrial: async (proposal) => train(proposal.values, proposal.epochs),
 *   saveState: (state) => fs.writeFileSync(file, JSON.stringify(state)),
 *   loadState: () => (fs.existsSync(file) ? JSON.parse(fs.readFileSync(file, 'utf8')) : null),
 * });
 * outcome.best?.values;
 * ```
 */
export async function runTuning(options: RunTuningOptions): Promise<TuningOutcome> {
  const { oracle, runTrial, signal } = options;
  const executions = positiveInt('executionsPerTrial', options.executionsPerTrial ?? 1);
  const maxFailures = positiveInt(
    'maxConsecutiveFailedTrials',
    options.maxConsecutiveFailedTrials ?? 3,
  );
  const direction = options.direction ?? oracle.direction;
  if (direction !== 'min' && direction !== 'max') {
    throw new MenagerieError(
      'CONFIG_INVALID',
      `runTuning needs a direction ('min' or 'max'): the oracle has none, got ${String(direction)}`,
    );
  }

  const saved = options.loadState ? await options.loadState() : null;
  const trials: TuningTrial[] = [];
  if (saved) {
    checkState(saved);
    oracle.restore(saved.oracle);
    trials.push(...saved.trials);
  }
  const finished = new Map(trials.map((t) => [t.trialId, t]));
  const outcome = (aborted: boolean): TuningOutcome => ({
    trials,
    best: bestTrial(trials, direction),
    aborted,
  });

  // Counted within this process: after a fix, a resumed run gets a fresh allowance.
  let consecutiveFailures = 0;
  for (;;) {
    if (signal?.aborted) return outcome(true);
    const proposal = oracle.next();
    if (!proposal) return outcome(false);

    const earlier = finished.get(proposal.trialId);
    if (earlier && configKey(earlier.values) === configKey(proposal.values)) {
      // The oracle's state lagged behind ours: give it the result instead of rerunning.
      oracle.report(toResult(earlier));
      continue;
    }

    const scores: number[] = [];
    let epochs = 0;
    let failure: unknown;
    for (let execution = 0; execution < executions && failure === undefined; execution++) {
      if (signal?.aborted) return outcome(true);
      try {
        const result = await runTrial(proposal, execution, signal);
        if (!Number.isFinite(result.score)) {
          throw new Error(`objective is not a finite number: ${String(result.score)}`);
        }
        scores.push(result.score);
        epochs = Math.max(epochs, result.epochs);
      } catch (error) {
        failure = error ?? new Error('trial failed');
      }
      // Interrupted, not failed: leave it unrecorded so that a resume reruns it.
      if (signal?.aborted) return outcome(true);
    }

    const trial: TuningTrial = {
      trialId: proposal.trialId,
      values: proposal.values,
      status: failure === undefined ? 'COMPLETED' : 'FAILED',
      executionScores: scores,
      ...(failure === undefined
        ? { score: scores.reduce((a, b) => a + b, 0) / scores.length, epochs }
        : { error: failure instanceof Error ? failure.message : String(failure) }),
      ...(proposal.warmStartFrom === undefined ? {} : { warmStartFrom: proposal.warmStartFrom }),
      ...(proposal.initialEpoch === undefined ? {} : { initialEpoch: proposal.initialEpoch }),
    };
    oracle.report(toResult(trial));
    trials.push(trial);
    finished.set(trial.trialId, trial);
    await options.saveState({ version: 1, oracle: oracle.state(), trials: [...trials] });
    await options.onTrialEnd?.(trial);

    consecutiveFailures = trial.status === 'FAILED' ? consecutiveFailures + 1 : 0;
    if (consecutiveFailures >= maxFailures) {
      throw new MenagerieError(
        'TUNING_TOO_MANY_FAILURES',
        `${consecutiveFailures} trials in a row failed (maxConsecutiveFailedTrials is ${maxFailures}); last, ${trial.trialId}: ${trial.error ?? 'unknown error'}`,
        { cause: failure },
      );
    }
  }
}

/** The best completed trial for the direction, or null when none completed. */
export function bestTrial(
  trials: readonly TuningTrial[],
  direction: 'min' | 'max',
): TuningTrial | null {
  let best: TuningTrial | null = null;
  for (const t of trials) {
    if (t.status !== 'COMPLETED' || t.score === undefined) continue;
    if (!best || (direction === 'max' ? t.score > best.score! : t.score < best.score!)) best = t;
  }
  return best;
}

function toResult(trial: TuningTrial) {
  return {
    trialId: trial.trialId,
    values: trial.values,
    status: trial.status,
    ...(trial.score === undefined ? {} : { score: trial.score }),
    ...(trial.epochs === undefined ? {} : { epochs: trial.epochs }),
  };
}

function checkState(state: unknown): asserts state is TuningState {
  const s = state as Partial<TuningState> | null;
  if (typeof s !== 'object' || s === null || s.version !== 1 || !Array.isArray(s.trials)) {
    throw new MenagerieError(
      'TUNING_STATE_INVALID',
      'saved tuning state should be { version: 1, oracle, trials: [...] }',
    );
  }
}

function positiveInt(name: string, value: number): number {
  if (!Number.isSafeInteger(value) || value < 1) {
    throw new MenagerieError('CONFIG_INVALID', `${name} should be an integer >= 1, got ${value}`);
  }
  return value;
}
