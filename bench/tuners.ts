// `npm run bench -- tuners [--limit-per-label N] [--max-epochs E] [--factor F]`: Hyperband
// against RandomSearch at an equal epoch budget, both through runTrackedTuning (trials as
// child runs) on the demo data: 200 train and up to 200 val images per class (of the
// epoch-e2e set, 512×512 JPEGs ingested by reference into a temporary data directory) at
// 64×64. Hyperband runs first (one iteration); the epochs its trials actually trained
// (promotions warm-start and train only their extra epochs) are the budget RandomSearch
// then gets as trials × epochs. The conv trunk is fixed to the reference's (input 64,
// conv 32 and 64 filters, 3×3) so a trial costs about the same whichever tuner drew it;
// depth, batch norm, dense width, dropout, learning rate and optimizer are searched.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { jobContext } from '../cli/commands/train.js';
import { openWorkspace } from '../cli/workspace.js';
import { writeDemoDataset } from '../demo/demo-dataset.js';
import { ingestImages } from '../data/ingest/ingest.js';
import type { JobContext } from '../jobs/tracked-training.js';
import { runTrackedTuning } from '../jobs/tracked-tuning.js';
import type { HpValue } from '../plugin-api/hyperparameters.js';
import { printFigure, printRatio, timeIt, numberFlag, loadAverage } from './report.js';

const WORK = path.resolve(import.meta.dirname, '.work');
const PER_CLASS = 1000;
const SEED = 42;
/** Not searched: the reference's conv trunk at 64×64, so trial cost stays comparable. */
const FIXED: Record<string, HpValue> = {
  input_size: 64,
  conv1_filters: 32,
  conv1_kernel: 3,
  conv2_filters: 64,
  conv2_kernel: 3,
};

interface TunerFigures {
  best: number;
  epochs: number;
  trials: number;
  seconds: number;
  bestValues: Record<string, HpValue>;
}

export async function run(args: string[]): Promise<void> {
  const limitPerLabel = numberFlag(args, '--limit-per-label', 200);
  const maxEpochs = numberFlag(args, '--max-epochs', 9);
  const factor = numberFlag(args, '--factor', 3);
  const source = path.join(WORK, `epoch-e2e-src-${PER_CLASS}`);
  await writeDemoDataset({ dir: source, perClass: PER_CLASS, seed: 'bench-epoch-e2e', size: 512 });

  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'menagerie-tuners-'));
  const workspace = await openWorkspace({ dataDir });
  try {
    await ingestImages(workspace, { source, reference: true });
    const context = jobContext(workspace);
    console.log(
      `demo data: ${limitPerLabel} train and val images per class at most, 64×64; fixed ` +
        `${Object.entries(FIXED)
          .map(([k, v]) => `${k}=${String(v)}`)
          .join(', ')}; load average ${loadAverage()}`,
    );

    const hyperband = await tune(context, 'menagerie:hyperband', {
      limitPerLabel,
      // runTrackedTuning caps trials at 10 unless told; Hyperband's brackets need more.
      maxTrials: 1000,
      tunerOptions: { maxEpochs, factor, hyperbandIterations: 1 },
    });
    report('hyperband', hyperband, `maxEpochs ${maxEpochs}, factor ${factor}, 1 iteration`);

    const perTrial = divisorUpTo(hyperband.epochs, maxEpochs);
    const trials = hyperband.epochs / perTrial;
    const random = await tune(context, 'menagerie:random', {
      limitPerLabel,
      maxTrials: trials,
      epochs: perTrial,
    });
    report('random search', random, `${trials} trials × ${perTrial} epochs`);

    printFigure('epoch budget hyperband', hyperband.epochs, 'epochs');
    printFigure('epoch budget random search', random.epochs, 'epochs');
    printFigure('wall time hyperband', hyperband.seconds, 's');
    printFigure('wall time random search', random.seconds, 's');
    printFigure('best hyperband', hyperband.best, 'val_accuracy');
    printFigure('best random search', random.best, 'val_accuracy');
    console.log(`load average after: ${loadAverage()}`);
    printRatio('tuners best val_accuracy hyperband vs random search', hyperband.best, random.best);
  } finally {
    await workspace.close();
    fs.rmSync(dataDir, { recursive: true, force: true });
  }
}

async function tune(
  context: JobContext,
  tuner: string,
  options: {
    limitPerLabel: number;
    maxTrials: number;
    epochs?: number;
    tunerOptions?: Record<string, unknown>;
  },
): Promise<TunerFigures> {
  let epochs = 0;
  const { result, seconds } = await timeIt(() =>
    runTrackedTuning(context, {
      plugin: 'menagerie:cnn',
      tuner,
      objective: 'val_accuracy',
      seed: SEED,
      fixed: FIXED,
      experiment: `bench-tuners-${tuner.replace('menagerie:', '')}`,
      ...options,
      // Counts the epochs each trial trains, promotions' extra epochs only.
      observer: { onEpochEnd: () => void epochs++ },
      onTrialEnd: (trial) =>
        console.log(
          `  ${tuner} trial ${trial.trialId}: ${trial.status} epochs ${trial.epochs ?? '-'}` +
            `${trial.initialEpoch ? ` (from ${trial.initialEpoch})` : ''} ` +
            `val_accuracy ${trial.score?.toFixed(4) ?? '-'}`,
        ),
    }),
  );
  const { outcome } = result;
  if (!outcome.best?.score) throw new Error(`${tuner} finished no trial`);
  return {
    best: outcome.best.score,
    epochs,
    trials: outcome.trials.length,
    seconds,
    bestValues: outcome.best.values,
  };
}

function report(name: string, figures: TunerFigures, how: string): void {
  const searched = Object.entries(figures.bestValues)
    .filter(([k]) => !(k in FIXED))
    .map(([k, v]) => `${k}=${typeof v === 'number' ? Number(v.toPrecision(3)) : String(v)}`);
  console.log(
    `${name} (${how}): ${figures.trials} trials, ${figures.epochs} epochs, ` +
      `${figures.seconds.toFixed(1)} s, best val_accuracy ${figures.best.toFixed(4)} ` +
      `with ${searched.join(' ')}; load ${loadAverage()}`,
  );
}

/** The largest divisor of `total` no greater than `most`: epochs per random-search trial. */
function divisorUpTo(total: number, most: number): number {
  for (let d = Math.min(most, total); d > 1; d--) if (total % d === 0) return d;
  return 1;
}
