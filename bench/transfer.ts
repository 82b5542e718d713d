// `npm run bench -- transfer [--per-class N] [--epochs E]`: transfer learning on a
// MobileNetV2 ×1.4 base, end to end on 512×512 JPEGs (3 × 334 demo images by default,
// ingested by reference): Menagerie's `transfer` plugin through the product's tracked
// training (backbone features computed once and cached, a head trained on them; no
// augmented views and no early stopping, so both sides do the same work) against two Keras 3
// anchors on the same files (bench/anchors/transfer.py): (a) the base frozen inside the model
// and `model.fit` on tf.data, and (b) features precomputed with `base.predict`, then the head
// fitted. Each side reads and decodes every JPEG once per feature pass, at the same reduced
// DCT scale, and trains E epochs. Ours runs twice in fresh workspaces with the feature cache
// emptied: the first also writes the backbone's SavedModel (once per machine), the second
// reuses it. Keras's base has random weights (ImageNet weights cannot be downloaded here):
// the same compute.
import fs from 'node:fs';
import path from 'node:path';
import { spawn } from 'node:child_process';
import { jobContext } from '../cli/commands/train.js';
import { openWorkspace } from '../cli/workspace.js';
import { ingestImages } from '../data/ingest/ingest.js';
import { writeDemoDataset } from '../demo/demo-dataset.js';
import { runTrackedTraining } from '../jobs/tracked-training.js';
import { ensurePythonEnv } from './python-env.js';
import { KERAS_ANCHOR_PACKAGES } from './reference-cnn.js';
import { loadAverage, numberFlag, printFigure, printRatio, timeIt } from './report.js';

const WORK = path.resolve(import.meta.dirname, '.work');

interface AnchorResult {
  seconds: number;
  feature_seconds: number;
  val_accuracy: number;
  images: number;
  tf: string;
  keras: string;
}

export async function run(args: string[]): Promise<void> {
  const perClass = numberFlag(args, '--per-class', 334);
  const epochs = numberFlag(args, '--epochs', 5);
  const source = path.join(WORK, `transfer-src-${perClass}`);
  const dataDir = path.join(WORK, `transfer-data-${perClass}`);
  console.log(`generating ${perClass * 3} 512×512 JPEGs in ${source} (kept for the next run)`);
  await writeDemoDataset({ dir: source, perClass, seed: 'bench-transfer', size: 512 });
  const { python } = await ensurePythonEnv({ packages: KERAS_ANCHOR_PACKAGES });

  const setup = await openWorkspace({ dataDir });
  const ingest = await ingestImages(setup, { source, reference: true });
  await setup.close();
  if (ingest.rejected.length > 0) throw new Error(`ingest rejected ${ingest.rejected.length}`);
  const db = path.join(dataDir, 'menagerie.db');
  const cache = path.join(dataDir, 'cache');
  console.log(`${ingest.total} images; ${epochs} epochs; load average ${loadAverage()}`);

  const ours = async (cold: boolean) => {
    fs.rmSync(path.join(cache, 'features'), { recursive: true, force: true });
    if (cold) fs.rmSync(path.join(cache, 'backbones'), { recursive: true, force: true });
    const { result, seconds } = await timeIt(async () => {
      const workspace = await openWorkspace({ dataDir });
      try {
        return (
          await runTrackedTraining(jobContext(workspace), {
            plugin: 'transfer',
            hp: { views: 1 },
            augment: false,
            epochs,
            earlyStopping: false,
            reduceLrOnPlateau: false,
            experiment: 'bench-transfer',
          })
        ).result;
      } finally {
        await workspace.close();
      }
    });
    if (result.history.length !== epochs) throw new Error(`trained ${result.history.length}`);
    const trainSeconds = result.history.reduce((sum, h) => sum + (h.seconds ?? 0), 0);
    console.log(
      `menagerie (${cold ? 'cold: SavedModel written' : 'SavedModel reused'}): ${seconds.toFixed(1)} s, ` +
        `features ${(seconds - trainSeconds).toFixed(1)} s, head ${trainSeconds.toFixed(2)} s ` +
        `(${(trainSeconds / epochs).toFixed(3)} s an epoch), val_accuracy ${result.metrics?.accuracy.toFixed(3)}; ` +
        `load ${loadAverage()}`,
    );
    return seconds;
  };
  const keras = async (mode: 'precompute' | 'frozen-fit') => {
    const result = await anchor(python, db, epochs, mode);
    console.log(
      `keras ${mode}: ${result.seconds.toFixed(1)} s` +
        (mode === 'precompute' ? ` (features ${result.feature_seconds.toFixed(1)} s)` : '') +
        `; load ${loadAverage()}`,
    );
    return result;
  };

  // Interleaved, so load from other processes hits every side alike.
  const precompute = await keras('precompute');
  const cold = await ours(true);
  const frozenFit = await keras('frozen-fit');
  const warm = await ours(false);

  const kerasName = `keras ${precompute.keras} on TF ${precompute.tf}`;
  printFigure(
    `${kerasName}, (a) frozen base in model.fit, ${epochs} epochs`,
    frozenFit.seconds,
    's',
  );
  printFigure(
    `${kerasName}, (b) base.predict once + head fit, ${epochs} epochs`,
    precompute.seconds,
    's',
  );
  printFigure('menagerie transfer, first run on the machine', cold, 's');
  printFigure('menagerie transfer', warm, 's');
  printFigure('menagerie vs (a) frozen base in model.fit', warm / frozenFit.seconds, 'x');
  console.log(`load average after: ${loadAverage()}`);
  printRatio(
    'transfer time menagerie vs keras (b) precomputed features',
    warm,
    precompute.seconds,
    false,
  );
}

async function anchor(
  python: string,
  db: string,
  epochs: number,
  mode: string,
): Promise<AnchorResult> {
  const script = path.join(import.meta.dirname, 'anchors/transfer.py');
  const child = spawn(python, [script, db, String(epochs), mode], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, TF_CPP_MIN_LOG_LEVEL: '2' },
  });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
  child.stderr.on('data', (chunk: Buffer) => (stderr = (stderr + chunk.toString()).slice(-4000)));
  const code = await new Promise<number>((resolve) => child.on('close', (c) => resolve(c ?? 1)));
  const line = stdout.split('\n').find((l) => l.startsWith('{'));
  if (code !== 0 || !line) throw new Error(`keras anchor ${mode} exited ${code}:\n${stderr}`);
  return JSON.parse(line) as AnchorResult;
}
