import { MenagerieError } from '../../core/errors.js';
import { createRng, type Rng } from '../../core/random.js';
import type { HpSpec, HpValue, OracleOptions, TrialResult } from '../../plugin-api/plugin.js';
import { configKey, sampleValues } from '../../plugin-api/search-space.js';

/** One trial as an oracle remembers it. JSON-safe: it is part of the oracle's state. */
export interface TrialRecord {
  trialId: string;
  values: Record<string, HpValue>;
  status: 'RUNNING' | 'COMPLETED' | 'FAILED';
  score?: number;
  epochs?: number;
}

/** The options every oracle shares, checked. */
export interface CommonOptions {
  space: readonly HpSpec[];
  direction: 'min' | 'max';
  maxTrials: number | undefined;
  seed: number;
}

/** Tries per proposal to find a configuration not run before, as KerasTuner's 20 collisions. */
export const MAX_COLLISIONS = 50;

export function commonOptions(options: OracleOptions): CommonOptions {
  if (!Array.isArray(options.space))
    throw configInvalid('space', 'an array of HpSpecs', options.space);
  const direction = options.objective?.direction;
  if (direction !== 'min' && direction !== 'max') {
    throw configInvalid('objective.direction', "'min' or 'max'", direction);
  }
  return {
    space: options.space,
    direction,
    maxTrials: optionalInt(options, 'maxTrials', 1),
    seed: optionalInt(options, 'seed', 0) ?? 0,
  };
}

/** An integer option of at least `min`, or undefined when absent. */
export function optionalInt(options: OracleOptions, name: string, min: number): number | undefined {
  const value = options[name];
  if (value === undefined) return undefined;
  if (!Number.isSafeInteger(value) || (value as number) < min) {
    throw configInvalid(name, `an integer >= ${min}`, value);
  }
  return value as number;
}

export function configInvalid(name: string, expected: string, got: unknown): MenagerieError {
  return new MenagerieError(
    'CONFIG_INVALID',
    `tuner option ${name} should be ${expected}, got ${JSON.stringify(got) ?? String(got)}`,
  );
}

/**
 * The trials an oracle has proposed, in order, with what came back. Oracles derive every
 * random draw from (seed, trial number), never from a stream position, so the book alone
 * is enough to continue a search exactly after `restore`.
 */
export class TrialBook {
  trials: TrialRecord[] = [];
  readonly #direction: 'min' | 'max';
  readonly #seed: number;
  #tried = new Set<string>();

  constructor(direction: 'min' | 'max', seed: number) {
    this.#direction = direction;
    this.#seed = seed;
  }

  /** The id the next proposal gets: trial-0001, trial-0002… */
  nextId(): string {
    return `trial-${String(this.trials.length + 1).padStart(4, '0')}`;
  }

  /** A random stream for the next proposal, the same after a restore. */
  rngForNext(purpose = 'sample'): Rng {
    return createRng(this.#seed).fork(this.nextId()).fork(purpose);
  }

  hasTried(values: Readonly<Record<string, HpValue>>): boolean {
    return this.#tried.has(configKey(values));
  }

  /** Records a proposal as RUNNING and returns its id. */
  add(values: Record<string, HpValue>, epochs?: number): string {
    const trialId = this.nextId();
    this.trials.push({
      trialId,
      values,
      status: 'RUNNING',
      ...(epochs === undefined ? {} : { epochs }),
    });
    this.#tried.add(configKey(values));
    return trialId;
  }

  /** Random untried values, or null after MAX_COLLISIONS draws that were all run before. */
  sampleUntried(space: readonly HpSpec[]): Record<string, HpValue> | null {
    const rng = this.rngForNext();
    for (let attempt = 0; attempt < MAX_COLLISIONS; attempt++) {
      const values = sampleValues(space, rng);
      if (!this.hasTried(values)) return values;
    }
    return null;
  }

  /** Stores a result. A result for an unknown trial is refused: it belongs to another search. */
  report(result: TrialResult): TrialRecord {
    const trial = this.trials.find((t) => t.trialId === result.trialId);
    if (!trial) {
      throw new MenagerieError(
        'TUNING_STATE_INVALID',
        `reported trial '${result.trialId}' was never proposed by this oracle`,
      );
    }
    const ok = result.status === 'COMPLETED' && Number.isFinite(result.score);
    trial.status = ok ? 'COMPLETED' : 'FAILED';
    if (ok) trial.score = result.score as number;
    else delete trial.score;
    if (result.epochs !== undefined) trial.epochs = result.epochs;
    return trial;
  }

  completed(): TrialRecord[] {
    return this.trials.filter((t) => t.status === 'COMPLETED');
  }

  /** Whether `a` is a better score than `b` for this objective. */
  better(a: number, b: number): boolean {
    return this.#direction === 'max' ? a > b : a < b;
  }

  /** Completed trials best first. */
  ranked(trials: readonly TrialRecord[] = this.completed()): TrialRecord[] {
    const sign = this.#direction === 'max' ? -1 : 1;
    return trials
      .filter((t) => t.status === 'COMPLETED')
      .sort((a, b) => sign * ((a.score as number) - (b.score as number)));
  }

  get running(): number {
    return this.trials.filter((t) => t.status === 'RUNNING').length;
  }

  restore(trials: TrialRecord[]): void {
    this.trials = trials.map((t) => ({ ...t, values: { ...t.values } }));
    this.#tried = new Set(this.trials.map((t) => configKey(t.values)));
  }
}

/**
 * Checks a saved state's envelope and returns its body. The state says which tuner wrote
 * it, so resuming a Hyperband search with a random-search oracle fails loudly.
 */
export function openState(tuner: string, state: unknown): Record<string, unknown> {
  if (typeof state !== 'object' || state === null || Array.isArray(state)) {
    throw stateInvalid(tuner, 'should be an object');
  }
  const body = state as Record<string, unknown>;
  if (body.tuner !== tuner) {
    throw stateInvalid(tuner, `was written by ${JSON.stringify(body.tuner)}`);
  }
  if (!Array.isArray(body.trials) || !body.trials.every(isTrialRecord)) {
    throw stateInvalid(tuner, 'has no valid trials list');
  }
  return body;
}

export function stateInvalid(tuner: string, problem: string): MenagerieError {
  return new MenagerieError('TUNING_STATE_INVALID', `saved state for ${tuner} ${problem}`);
}

function isTrialRecord(value: unknown): value is TrialRecord {
  if (typeof value !== 'object' || value === null) return false;
  const t = value as Record<string, unknown>;
  return (
    typeof t.trialId === 'string' &&
    typeof t.values === 'object' &&
    t.values !== null &&
    (t.status === 'RUNNING' || t.status === 'COMPLETED' || t.status === 'FAILED') &&
    (t.score === undefined || typeof t.score === 'number')
  );
}
