// `npm run bench -- epoch-e2e [--per-class N] [--epochs E]`: end-to-end epochs on 512×512 JPEGs
// (3 × 1,000 demo images by default, ingested by reference), decode and augmentation included,
// of the default `menagerie:cnn` (64×64, batch 32) through the real trainer (trainModel +
// loadImageDataset, pixel cache cleared first so epoch 1 decodes every JPEG, later epochs read
// the cache) against two Keras pipelines on the same files, whose paths they read from our
// SQLite catalogue (bench/anchors/epoch_e2e.py): tf.data with decode_jpeg at the reference CNN's
// decoder's scale, `.cache()` after decode/resize, `.shuffle()`, Keras augmentation layers and
// `.prefetch(AUTOTUNE)` (the ratios), and the reference project's
// ImageDataGenerator.flow_from_dataframe, decoding and augmenting every epoch (for comparison).
// All validate on the val split inside each epoch, so an epoch is train + val. Epochs alternate,
// tf.data, then ImageDataGenerator, then ours, all processes alive, so load from other processes
// hits all alike. Epoch 1 (decode included) and epoch 2 (cached; the median of epochs 2 to E, 3
// by default: the tf.data anchor's first batch of an epoch sometimes waited 15-17 s on an idle
// machine, which one epoch alone would report) each get a ratio.
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import readline from 'node:readline';
import { openWorkspace } from '../cli/workspace.js';
import { loadImageDataset } from '../data/dataset-loader.js';
import { writeDemoDataset } from '../demo/demo-dataset.js';
import { ingestImages } from '../data/ingest/ingest.js';
import { HyperParameters } from '../plugin-api/hyperparameters.js';
import { trainModel } from '../training/trainer.js';
import { ensurePythonEnv } from './python-env.js';
import { KERAS_ANCHOR_PACKAGES } from './reference-cnn.js';
import { percentile, printFigure, printRatio, timeIt, numberFlag, loadAverage } from './report.js';

const WORK = path.resolve(import.meta.dirname, '.work');
const BATCH = 32;
/** flow_from_dataframe needs pandas; ImageDataGenerator's rotation and zoom need scipy. */
const ANCHOR_PACKAGES = [...KERAS_ANCHOR_PACKAGES, 'pandas', 'scipy'];

interface EpochTimes {
  /** Train and val, from the epoch's start to its validation's end. */
  seconds: number;
  /** The training part alone. */
  trainSeconds: number;
  valAccuracy: number;
}

export async function run(args: string[]): Promise<void> {
  const perClass = numberFlag(args, '--per-class', 1000);
  const epochs = numberFlag(args, '--epochs', 3);
  if (epochs < 2) throw new Error('--epochs should be at least 2: epoch 2 is the figure');
  const source = path.join(WORK, `epoch-e2e-src-${perClass}`);
  const dataDir = path.join(WORK, `epoch-e2e-data-${perClass}`);
  console.log(`generating ${perClass * 3} 512×512 JPEGs in ${source} (kept for the next run)`);
  await writeDemoDataset({ dir: source, perClass, seed: 'bench-epoch-e2e', size: 512 });

  const { python } = await ensurePythonEnv({ packages: ANCHOR_PACKAGES });
  const workspace = await openWorkspace({ dataDir });
  try {
    // Re-ingesting the same files adds nothing; by reference, so URIs are the files' paths.
    const ingest = await ingestImages(workspace, { source, reference: true });
    if (ingest.rejected.length > 0) throw new Error(`ingest rejected ${ingest.rejected.length}`);
    const cacheDir = path.join(dataDir, 'cache');
    fs.rmSync(cacheDir, { recursive: true, force: true });

    const plugin = workspace.plugins.get('model', 'menagerie:cnn');
    const hp = new HyperParameters();
    plugin.space(hp);
    const spec = plugin.inputSpec(hp);
    const common = { db: workspace.database.db, blobs: workspace.blobs, spec, batchSize: BATCH };
    const train = await loadImageDataset({ ...common, split: 'train', augment: true, cacheDir });
    const val = await loadImageDataset({ ...common, split: 'val', labels: train.labels, cacheDir });
    const images = train.size + val.size;
    console.log(
      `${train.size} train + ${val.size} val images, ${spec.size}×${spec.size}, batch ${BATCH}; ` +
        `an epoch is train (augmented) + val on both sides; load average ${loadAverage()}`,
    );

    const dbFile = path.join(dataDir, 'menagerie.db');
    const anchors = {
      tfdata: await pacedKeras(python, dbFile, epochs, spec.size, 'tfdata'),
      generator: await pacedKeras(python, dbFile, epochs, spec.size, 'generator'),
    };
    const times = { tfdata: [] as EpochTimes[], generator: [] as EpochTimes[] };
    const kerasEpoch = async () => {
      times.tfdata.push(await anchors.tfdata.epoch());
      times.generator.push(await anchors.generator.epoch());
    };
    const ours: EpochTimes[] = [];
    let trainSeconds = 0;
    const outputDir = fs.mkdtempSync(path.join(os.tmpdir(), 'menagerie-epoch-e2e-'));
    try {
      await kerasEpoch();
      const { result } = await timeIt(() =>
        trainModel({
          plugin,
          hp,
          train,
          val,
          epochs,
          seed: 0,
          outputDir,
          observer: {
            onBatchEnd(_epoch, batch, _loss, info) {
              if (batch === info.batches - 1) trainSeconds = info.seconds;
            },
            async onEpochEnd(epoch, metrics, info) {
              ours.push({
                seconds: info.seconds,
                trainSeconds,
                valAccuracy: metrics.val_accuracy ?? NaN,
              });
              report(epoch, times.tfdata[epoch]!, times.generator[epoch]!, ours[epoch]!, images);
              // Keras's next epochs run while our trainer waits here, outside our epoch timer.
              if (epoch + 1 < epochs) await kerasEpoch();
            },
          },
        }),
      );
      if (result.history.length !== epochs) throw new Error(`trained ${result.history.length}`);
    } finally {
      anchors.tfdata.close();
      anchors.generator.close();
      await Promise.all([train.close(), val.close()]);
      fs.rmSync(outputDir, { recursive: true, force: true });
    }
    const summary = await anchors.tfdata.summary;
    await anchors.generator.summary;
    if (train.decoded !== train.size) {
      throw new Error(`expected ${train.size} decodes in epoch 1 only, got ${train.decoded}`);
    }

    const later = (list: EpochTimes[]) =>
      percentile(
        list.slice(1).map((t) => t.seconds),
        50,
      );
    const suffix = epochs > 2 ? ` (median of epochs 2-${epochs})` : '';
    const versions = `TF ${String(summary.tf)}, Keras ${String(summary.keras)}`;
    const names = {
      generator: 'keras ImageDataGenerator.flow_from_dataframe + fit',
      tfdata: `keras tf.data (decode_jpeg, cache, shuffle, augmentation layers, prefetch) + fit (${versions})`,
    };
    for (const key of ['generator', 'tfdata'] as const) {
      printFigure(`${names[key]} epoch 1`, times[key][0]!.seconds, 's');
      printFigure(`${names[key]} epoch 2${suffix}`, later(times[key]), 's');
    }
    printFigure('menagerie trainModel + loadImageDataset epoch 1', ours[0]!.seconds, 's');
    printFigure(`menagerie trainModel + loadImageDataset epoch 2${suffix}`, later(ours), 's');
    printFigure('keras tf.data epoch 2', images / later(times.tfdata), 'images/s');
    printFigure('menagerie epoch 2', images / later(ours), 'images/s');
    printFigure(
      'epoch 2 time menagerie vs ImageDataGenerator (for comparison)',
      later(ours) / later(times.generator),
      'x',
    );
    console.log(`load average after: ${loadAverage()}`);
    printRatio(
      'epoch-e2e epoch 1 time menagerie vs keras tf.data',
      ours[0]!.seconds,
      times.tfdata[0]!.seconds,
      false,
    );
    printRatio(
      'epoch-e2e epoch 2 time menagerie vs keras tf.data',
      later(ours),
      later(times.tfdata),
      false,
    );
  } finally {
    await workspace.close();
  }
}

function report(
  epoch: number,
  tfdata: EpochTimes,
  generator: EpochTimes,
  ours: EpochTimes,
  images: number,
): void {
  const side = (t: EpochTimes) =>
    `${t.seconds.toFixed(2)} s (train ${t.trainSeconds.toFixed(2)} s, ` +
    `${(images / t.seconds).toFixed(0)} images/s, val_accuracy ${t.valAccuracy.toFixed(3)})`;
  console.log(`epoch ${epoch + 1}: keras tf.data ${side(tfdata)}`);
  console.log(`epoch ${epoch + 1}: keras ImageDataGenerator ${side(generator)}`);
  console.log(`epoch ${epoch + 1}: menagerie ${side(ours)}; load ${loadAverage()}`);
}

/**
 * The Keras anchor as a live process whose epochs run one at a time on request, so its
 * epochs and ours alternate and share whatever load the machine has at the moment.
 */
async function pacedKeras(
  python: string,
  db: string,
  epochs: number,
  size: number,
  pipeline: 'tfdata' | 'generator',
) {
  const script = path.join(import.meta.dirname, 'anchors/epoch_e2e.py');
  const args = [script, db, String(epochs), String(size), String(BATCH), '--pipeline', pipeline];
  args.push('--paced');
  const child = spawn(python, args, { stdio: ['pipe', 'pipe', 'pipe'] });
  let stderr = '';
  child.stderr.on('data', (chunk: Buffer) => (stderr = (stderr + chunk.toString()).slice(-4000)));
  const lines = readline.createInterface({ input: child.stdout })[Symbol.asyncIterator]();
  const exited = new Promise<number>((resolve) => child.on('close', (code) => resolve(code ?? 1)));
  const next = async (): Promise<Record<string, unknown>> => {
    // flow_from_dataframe prints "Found N validated image filenames" on stdout: skip it.
    for (;;) {
      const { value, done } = await lines.next();
      if (done) {
        const tail = stderr.split('\n').slice(-15).join('\n');
        throw new Error(`keras anchor exited (${await exited}):\n${tail}`);
      }
      if (value.startsWith('{')) return JSON.parse(value) as Record<string, unknown>;
    }
  };
  await next(); // ready: model compiled, generators built
  let summary: Promise<Record<string, unknown>> | undefined;
  return {
    async epoch(): Promise<EpochTimes> {
      child.stdin.write('\n');
      const { seconds, train_seconds, val_accuracy } = await next();
      if (typeof seconds !== 'number' || typeof train_seconds !== 'number') {
        throw new Error('keras anchor reported no epoch time');
      }
      return { seconds, trainSeconds: train_seconds, valAccuracy: Number(val_accuracy) };
    },
    close(): void {
      child.stdin.end();
    },
    get summary(): Promise<Record<string, unknown>> {
      summary ??= next();
      return summary;
    },
  };
}
