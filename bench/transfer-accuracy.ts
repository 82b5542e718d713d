// `npm run bench -- transfer-accuracy [--folder DIR] [--folds K] [--epochs E] [--hp k=v ...]`:
// accuracy of the `transfer` plugin with its defaults on real photos under K-fold
// cross-validation (default: the 85 AFHQ photos of ../shared/samples/afhq-mini, 5 folds,
// stratified by label). Every fold trains through the product's tracked training on the
// other folds and validates on its own; the figure is each fold's best val accuracy (the
// checkpoint the run keeps), their mean and the worst fold. The backbone's features are
// computed once and shared by the folds through the feature cache. The last line compares
// the mean with the 95% goal (the reference project reports 95.3% after training on 14,630
// AFHQ images); it is a goal, not an anchor measured in this run.
import fs from 'node:fs';
import path from 'node:path';
import { jobContext, parseHp } from '../cli/commands/train.js';
import { openWorkspace } from '../cli/workspace.js';
import { ingestImages } from '../data/ingest/ingest.js';
import { runTrackedTraining } from '../jobs/tracked-training.js';
import { loadAverage, numberFlag, printFigure, printRatio, timeIt } from './report.js';

const WORK = path.resolve(import.meta.dirname, '.work');
const AFHQ_MINI = path.resolve(import.meta.dirname, '../../shared/samples/afhq-mini');

export async function run(args: string[]): Promise<void> {
  const folder = path.resolve(flag(args, '--folder') ?? AFHQ_MINI);
  const folds = numberFlag(args, '--folds', 5);
  const epochs = numberFlag(args, '--epochs', 40);
  const hp = parseHp(args.flatMap((a, i) => (args[i - 1] === '--hp' ? [a] : [])));
  if (!fs.existsSync(folder)) throw new Error(`no folder ${folder} (give --folder)`);
  const dataDir = path.join(WORK, `transfer-cv-${path.basename(folder)}`);
  const workspace = await openWorkspace({ dataDir });
  try {
    const ingest = await ingestImages(workspace, { source: folder, reference: true });
    const { db } = workspace.database;
    const images = await db
      .selectFrom('images')
      .innerJoin('labels', 'labels.id', 'images.label_id')
      .select(['images.id', 'images.sha256', 'labels.name as label'])
      .orderBy('images.sha256')
      .execute();
    // Stratified: each label's images, in sha256 order, dealt to the folds in turn.
    const foldOf = new Map<number, number>();
    const dealt = new Map<string, number>();
    for (const image of images) {
      const n = dealt.get(image.label) ?? 0;
      foldOf.set(image.id, n % folds);
      dealt.set(image.label, n + 1);
    }
    console.log(
      `${images.length} photos (${[...dealt].map(([l, n]) => `${n} ${l}`).join(', ')}) from ${folder}, ` +
        `${folds} folds, up to ${epochs} epochs, hp ${JSON.stringify(hp)}; ` +
        `${ingest.added} newly ingested; load ${loadAverage()}`,
    );
    const accuracies: number[] = [];
    for (let fold = 0; fold < folds; fold++) {
      const val = images.filter((i) => foldOf.get(i.id) === fold).map((i) => i.id);
      await db.updateTable('images').set({ split: 'train' }).execute();
      await db.updateTable('images').set({ split: 'val' }).where('id', 'in', val).execute();
      const { result: outcome, seconds } = await timeIt(() =>
        runTrackedTraining(jobContext(workspace), {
          plugin: 'transfer',
          hp,
          epochs,
          experiment: 'transfer-cv',
          runName: `fold-${fold + 1}`,
        }),
      );
      const accuracy = outcome.result.metrics?.accuracy ?? 0;
      accuracies.push(accuracy);
      console.log(
        `fold ${fold + 1}: val_accuracy ${accuracy.toFixed(4)} on ${val.length} photos ` +
          `(best epoch ${outcome.result.bestEpoch! + 1} of ${outcome.result.history.length}, ${seconds.toFixed(1)} s)`,
      );
    }
    const mean = accuracies.reduce((a, b) => a + b, 0) / accuracies.length;
    printFigure(`transfer ${folds}-fold mean val accuracy`, mean, '');
    printFigure(`transfer ${folds}-fold worst fold`, Math.min(...accuracies), '');
    console.log(`load average after: ${loadAverage()}`);
    printRatio('transfer cross-validated accuracy vs the 95% goal', mean, 0.95);
  } finally {
    await workspace.close();
  }
}

function flag(args: string[], name: string): string | undefined {
  const at = args.indexOf(name);
  return at >= 0 ? args[at + 1] : undefined;
}
