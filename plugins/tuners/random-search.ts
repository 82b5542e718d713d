import type { Oracle, OracleOptions } from '../../plugin-api/plugin.js';
import { definePlugin, type TunerPlugin } from '../../plugin-api/plugin.js';
import { commonOptions, openState, TrialBook, type TrialRecord } from './trial-book.js';

const NAME = 'menagerie:random';

/**
 * KerasTuner's RandomSearch: each trial draws every active hyperparameter at random
 * (log-scaled ones in log space), skipping configurations already tried. Stops after
 * `maxTrials` (default 10) or when 50 draws in a row were all seen before.
 */
export function randomSearchTuner(): TunerPlugin {
  return definePlugin({
    name: NAME,
    kind: 'tuner',
    version: '1.0.0',
    description: 'random search over the space, without repeats',
    createOracle: (options) => createRandomOracle(options),
  });
}

function createRandomOracle(options: OracleOptions): Oracle {
  const { space, direction, maxTrials = 10, seed } = commonOptions(options);
  const book = new TrialBook(direction, seed);
  let exhausted = false;
  return {
    direction,
    next() {
      if (exhausted || book.trials.length >= maxTrials) return null;
      const values = book.sampleUntried(space);
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
