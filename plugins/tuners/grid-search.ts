import type { HpValue, Oracle, OracleOptions } from '../../plugin-api/plugin.js';
import { enumerateGrid } from '../../plugin-api/search-space.js';
import { definePlugin, type TunerPlugin } from '../../plugin-api/plugin.js';
import {
  commonOptions,
  optionalInt,
  openState,
  TrialBook,
  type TrialRecord,
} from './trial-book.js';

const NAME = 'menagerie:grid';

/**
 * KerasTuner's GridSearch: every combination of the active hyperparameters, in order,
 * the first declared varying slowest. Floats without a step take `floatPoints` (default 5)
 * evenly spaced values on their sampling scale. Runs the whole grid unless `maxTrials`.
 */
export function gridSearchTuner(): TunerPlugin {
  return definePlugin({
    name: NAME,
    kind: 'tuner',
    version: '1.0.0',
    description: 'every combination of the space, in order',
    createOracle: (options) => createGridOracle(options),
  });
}

function createGridOracle(options: OracleOptions): Oracle {
  const { space, direction, maxTrials, seed } = commonOptions(options);
  const floatPoints = optionalInt(options, 'floatPoints', 1) ?? 5;
  const grid: Record<string, HpValue>[] = enumerateGrid(space, { floatPoints });
  const budget = maxTrials ?? grid.length;
  const book = new TrialBook(direction, seed);
  let cursor = 0;
  return {
    direction,
    next() {
      while (book.trials.length < budget && cursor < grid.length) {
        const values = grid[cursor++] as Record<string, HpValue>;
        if (!book.hasTried(values)) return { trialId: book.add(values), values };
      }
      return null;
    },
    report(result) {
      book.report(result);
    },
    state: () => structuredClone({ tuner: NAME, trials: book.trials, cursor }),
    restore(state) {
      const body = openState(NAME, state);
      book.restore(body.trials as TrialRecord[]);
      cursor = typeof body.cursor === 'number' ? body.cursor : book.trials.length;
    },
  };
}
