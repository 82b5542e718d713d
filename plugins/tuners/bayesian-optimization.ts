import type { Rng } from '../../core/random.js';
import type { HpValue, Oracle, OracleOptions } from '../../plugin-api/plugin.js';
import {
  configKey,
  decodeVector,
  encodeValues,
  searchDimensions,
} from '../../plugin-api/search-space.js';
import { definePlugin, type TunerPlugin } from '../../plugin-api/plugin.js';
import {
  fitGaussianProcess,
  normalCdf,
  normalPdf,
  type GaussianProcess,
} from './gaussian-process.js';
import {
  commonOptions,
  configInvalid,
  openState,
  optionalInt,
  TrialBook,
  type TrialRecord,
} from './trial-book.js';

const NAME = 'menagerie:bayesian';

/**
 * Bayesian optimisation as in KerasTuner: after `numInitialPoints` random trials (default
 * 3 per dimension, at least 2), a Gaussian process on the unit-cube encoding of the space
 * models the objective, and each trial is the untried configuration that maximises the
 * acquisition: expected improvement (`acquisition: 'ei'`, default) or the upper
 * confidence bound (`'ucb'`, with `beta`, default 2.6). The acquisition is maximised over
 * random candidates, perturbations of the best trials, then a short local search.
 * Failed trials are never modelled; they only count against `maxTrials` (default 10).
 */
export function bayesianOptimizationTuner(): TunerPlugin {
  return definePlugin({
    name: NAME,
    kind: 'tuner',
    version: '1.0.0',
    description: 'Gaussian-process Bayesian optimisation with expected improvement or UCB',
    createOracle: (options) => createBayesianOracle(options),
  });
}

const RANDOM_CANDIDATES = 500;
const PERTURBATIONS_PER_TRIAL = 40;
const LOCAL_STARTS = 5;
const LOCAL_STEPS = 30;

function createBayesianOracle(options: OracleOptions): Oracle {
  const { space, direction, maxTrials = 10, seed } = commonOptions(options);
  const dims = searchDimensions(space).length;
  const numInitialPoints = optionalInt(options, 'numInitialPoints', 1) ?? Math.max(2, 3 * dims);
  const acquisition = options.acquisition ?? 'ei';
  if (acquisition !== 'ei' && acquisition !== 'ucb') {
    throw configInvalid('acquisition', "'ei' or 'ucb'", acquisition);
  }
  const kernel = options.kernel ?? 'matern52';
  if (kernel !== 'matern52' && kernel !== 'rbf') {
    throw configInvalid('kernel', "'matern52' or 'rbf'", kernel);
  }
  const beta = options.beta ?? 2.6;
  if (typeof beta !== 'number' || !(beta >= 0)) throw configInvalid('beta', 'a number >= 0', beta);

  const book = new TrialBook(direction, seed);
  let exhausted = false;

  /** Minimised target: scores of a 'max' objective are negated. */
  const target = (t: TrialRecord) => (direction === 'max' ? -1 : 1) * (t.score as number);

  const propose = (): Record<string, HpValue> | null => {
    const completed = book.completed();
    if (completed.length < numInitialPoints || dims === 0) return book.sampleUntried(space);
    const ys = completed.map(target);
    // Trials still running (a distributed search proposes before they report) count at the
    // worst score seen, a "constant liar": the next proposal looks away from them instead
    // of next to them. One trial at a time, none is running here.
    const pending = book.trials.filter((t) => t.status === 'RUNNING');
    const lie = Math.max(...ys);
    const gp = fitGaussianProcess(
      [...completed, ...pending].map((t) => encodeValues(space, t.values)),
      [...ys, ...pending.map(() => lie)],
      { kernel },
    );
    const bestY = Math.min(...ys);
    const score = (x: readonly number[]): number =>
      acquire(gp, x, acquisition === 'ei' ? { kind: 'ei', best: bestY } : { kind: 'ucb', beta });

    const rng = book.rngForNext('acquisition');
    const seen = new Map<string, { x: number[]; values: Record<string, HpValue>; a: number }>();
    const consider = (raw: readonly number[]) => {
      const values = decodeVector(space, raw);
      const key = configKey(values);
      if (seen.has(key) || book.hasTried(values)) return;
      // Score the snapped point: that is the configuration that would actually run.
      const x = encodeValues(space, values);
      seen.set(key, { x, values, a: score(x) });
    };
    for (let i = 0; i < RANDOM_CANDIDATES; i++) consider(uniform(rng, dims));
    const ranked = [...completed].sort((a, b) => target(a) - target(b)).slice(0, 5);
    for (const trial of ranked) {
      const centre = encodeValues(space, trial.values);
      for (let i = 0; i < PERTURBATIONS_PER_TRIAL; i++) {
        consider(perturb(rng, centre, [0.01, 0.03, 0.1][i % 3] as number));
      }
    }
    const starts = [...seen.values()].sort((a, b) => b.a - a.a).slice(0, LOCAL_STARTS);
    for (const start of starts) {
      let current = start;
      for (let step = 0; step < LOCAL_STEPS; step++) {
        const sd = 0.05 * (1 - step / LOCAL_STEPS) + 0.002;
        const before = seen.size;
        const raw = perturb(rng, current.x, sd);
        consider(raw);
        if (seen.size === before) continue;
        const added = [...seen.values()].at(-1);
        if (added && added.a > current.a) current = added;
      }
    }
    let best: { values: Record<string, HpValue>; a: number } | null = null;
    for (const c of seen.values()) if (!best || c.a > best.a) best = c;
    return best ? best.values : book.sampleUntried(space);
  };

  return {
    direction,
    next() {
      if (exhausted || book.trials.length >= maxTrials) return null;
      const values = propose();
      if (!values) {
        exhausted = true;
        return null;
      }
      return { trialId: book.add(values), values };
    },
    report(result) {
      book.report(result);
    },
    state: () => structuredClone({ tuner: NAME, trials: book.trials, exhausted }),
    restore(state) {
      const body = openState(NAME, state);
      book.restore(body.trials as TrialRecord[]);
      exhausted = body.exhausted === true;
    },
  };
}

/** Acquisition value to maximise, for a minimised target. */
function acquire(
  gp: GaussianProcess,
  x: readonly number[],
  how: { kind: 'ei'; best: number } | { kind: 'ucb'; beta: number },
): number {
  const { mean, sd } = gp.predict(x);
  if (how.kind === 'ucb') return -(mean - how.beta * sd);
  const improvement = how.best - mean;
  const z = improvement / sd;
  return improvement * normalCdf(z) + sd * normalPdf(z);
}

function uniform(rng: Rng, dims: number): number[] {
  return Array.from({ length: dims }, () => rng.next());
}

function perturb(rng: Rng, centre: readonly number[], sd: number): number[] {
  return centre.map((c) => Math.min(1, Math.max(0, c + rng.normal(0, sd))));
}
