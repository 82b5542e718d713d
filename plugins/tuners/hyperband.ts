import type { Oracle, OracleOptions, TrialProposal } from '../../plugin-api/plugin.js';
import { definePlugin, type TunerPlugin } from '../../plugin-api/plugin.js';
import {
  commonOptions,
  openState,
  optionalInt,
  stateInvalid,
  TrialBook,
  type TrialRecord,
} from './trial-book.js';

const NAME = 'menagerie:hyperband';

/** One bracket's rounds: which trials ran in each, and which earlier trial each continues. */
interface Bracket {
  bracketNum: number;
  rounds: { pastId: string | null; id: string }[][];
}

/**
 * The bracket arithmetic of KerasTuner's Hyperband, so that the same `maxEpochs` and
 * `factor` give the same trials and epochs. Bracket `b` has `b + 1` rounds; brackets run
 * from the most aggressive (most trials, fewest epochs) down to 0 (plain random search).
 */
export function hyperbandSchedule(maxEpochs: number, factor: number) {
  const raw = Math.log(maxEpochs) / Math.log(factor);
  // Math.log(9) / Math.log(3) is 2.0000000000000004: snap so ceil() agrees with Python's.
  const logEpochs = Math.abs(raw - Math.round(raw)) < 1e-9 ? Math.round(raw) : raw;
  const bracket0EndSize = Math.ceil(1 + logEpochs);
  let brackets = 0;
  for (let epochs = maxEpochs; epochs >= 1; epochs /= factor) brackets++;
  return {
    brackets,
    /** Trials in round `round` of bracket `bracket`. */
    size: (bracket: number, round: number): number =>
      Math.ceil((bracket0EndSize / (bracket + 1)) * factor ** (bracket - round)),
    /** Total epochs a trial of that round reaches. */
    epochs: (bracket: number, round: number): number =>
      Math.ceil(maxEpochs / factor ** (bracket - round)),
  };
}

/**
 * KerasTuner's Hyperband: successive halving over brackets. A promoted configuration is
 * a new trial with `warmStartFrom` (the earlier trial's id) and `initialEpoch`, so the
 * caller resumes from that trial's checkpoint and trains only the extra epochs.
 *
 * Options: `maxEpochs` (default 100), `factor` (3), `hyperbandIterations` (1), and an
 * optional `maxTrials` cap.
 */
export function hyperbandTuner(): TunerPlugin {
  return definePlugin({
    name: NAME,
    kind: 'tuner',
    version: '1.0.0',
    description: 'Hyperband: successive halving, promotions warm-start from checkpoints',
    createOracle: (options) => createHyperbandOracle(options),
  });
}

function createHyperbandOracle(options: OracleOptions): Oracle {
  const { space, direction, maxTrials, seed } = commonOptions(options);
  const maxEpochs = optionalInt(options, 'maxEpochs', 1) ?? 100;
  const factor = optionalInt(options, 'factor', 2) ?? 3;
  const iterations = optionalInt(options, 'hyperbandIterations', 1) ?? 1;
  const schedule = hyperbandSchedule(maxEpochs, factor);
  const book = new TrialBook(direction, seed);

  let brackets: Bracket[] = [];
  let currentBracket = schedule.brackets - 1;
  let currentIteration = 0;
  let stopped = false;

  const startBracket = (): Bracket => {
    const bracket: Bracket = {
      bracketNum: currentBracket,
      rounds: Array.from({ length: currentBracket + 1 }, () => []),
    };
    brackets.push(bracket);
    return bracket;
  };

  const randomTrial = (bracket: Bracket): TrialProposal | null => {
    const values = book.sampleUntried(space);
    if (!values) {
      stopped = true;
      return null;
    }
    const epochs = schedule.epochs(bracket.bracketNum, 0);
    const trialId = book.add(values, epochs);
    bracket.rounds[0]?.push({ pastId: null, id: trialId });
    return { trialId, values, epochs, initialEpoch: 0 };
  };

  /** The best completed trial of the previous round, once it is sure to make the cut. */
  const promotion = (bracket: Bracket, round: number): TrialProposal | null => {
    const b = bracket.bracketNum;
    const current = bracket.rounds[round] ?? [];
    const previous = bracket.rounds[round - 1] ?? [];
    const selected = new Set(current.map((r) => r.pastId));
    const ids = new Set(previous.map((r) => r.id).filter((id) => !selected.has(id)));
    const candidates = book.ranked(book.trials.filter((t) => ids.has(t.trialId)));
    // More finished than will be thrown out: the best of them is in the top `size`.
    if (candidates.length <= schedule.size(b, round - 1) - schedule.size(b, round)) return null;
    const best = candidates[0] as TrialRecord;
    const epochs = schedule.epochs(b, round);
    const trialId = book.add({ ...best.values }, epochs);
    current.push({ pastId: best.trialId, id: trialId });
    return {
      trialId,
      values: { ...best.values },
      epochs,
      warmStartFrom: best.trialId,
      initialEpoch: schedule.epochs(b, round - 1),
    };
  };

  startBracket();

  return {
    direction,
    next() {
      if (stopped || (maxTrials !== undefined && book.trials.length >= maxTrials)) return null;
      brackets = brackets.filter((bracket) => {
        const last = bracket.rounds.length - 1;
        return (bracket.rounds[last]?.length ?? 0) < schedule.size(bracket.bracketNum, last);
      });
      for (const bracket of brackets) {
        if ((bracket.rounds[0]?.length ?? 0) < schedule.size(bracket.bracketNum, 0)) {
          return randomTrial(bracket);
        }
        for (let round = 1; round < bracket.rounds.length; round++) {
          const proposal = promotion(bracket, round);
          if (proposal) return proposal;
        }
      }
      if (currentBracket === 0 && currentIteration + 1 >= iterations) {
        stopped = true;
        return null;
      }
      currentBracket -= 1;
      if (currentBracket < 0) {
        currentBracket = schedule.brackets - 1;
        currentIteration += 1;
      }
      return randomTrial(startBracket());
    },
    report(result) {
      book.report(result);
    },
    state: () =>
      structuredClone({
        tuner: NAME,
        trials: book.trials,
        brackets,
        currentBracket,
        currentIteration,
        stopped,
      }),
    restore(state) {
      const body = openState(NAME, state);
      if (
        !Array.isArray(body.brackets) ||
        typeof body.currentBracket !== 'number' ||
        typeof body.currentIteration !== 'number'
      ) {
        throw stateInvalid(NAME, 'lacks its brackets');
      }
      book.restore(body.trials as TrialRecord[]);
      brackets = structuredClone(body.brackets as Bracket[]);
      currentBracket = body.currentBracket;
      currentIteration = body.currentIteration;
      stopped = body.stopped === true;
    },
  };
}
