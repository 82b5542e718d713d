// `npm run bench -- predict-batch [--images N] [--repeats R]`: batched inference throughput
// of the reference CNN, batch 32, over N images decoded beforehand (the AFHQ sample JPEGs,
// cycled), against Keras 3 `model.predict(x, batch_size=32)` on the same images. Passes
// alternate, one of Keras then three of ours, both processes alive, so load from other
// processes hits all alike: Menagerie's predictor (tf/native-predictor.ts, native ops;
// the ratio), `model.predict` under the fast kernels, and `model.predict` under tfjs's stock
// kernels. Each figure is the median of R passes after a warm-up.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type * as TfNode from '@tensorflow/tfjs-node';
import { loadTensorflow } from '../tf/tensorflow.js';
import { decodeToPixels, pixelsToTensor } from '../data/preprocess.js';
import { fastPredictor } from '../tf/native-predictor.js';
import { installFastKernels } from '../tf/fast-kernels.js';
import { pacedAnchor } from './paced-anchor.js';
import { sampleJpegs } from './predict-inprocess.js';
import { ensurePythonEnv } from './python-env.js';
import { KERAS_ANCHOR_PACKAGES, referenceCnn } from './reference-cnn.js';
import { percentile, printFigure, printRatio, timeIt, numberFlag } from './report.js';

const BATCH = 32;
const LABELS = ['cat', 'dog', 'wild'];

export async function run(args: string[]): Promise<void> {
  const images = numberFlag(args, '--images', 3200);
  const repeats = numberFlag(args, '--repeats', 5);
  const files = sampleJpegs();
  const { python } = await ensurePythonEnv({ packages: KERAS_ANCHOR_PACKAGES });
  const keras = pacedAnchor(python, [
    path.join(import.meta.dirname, 'anchors/predict_keras.py'),
    'batch',
    String(images),
    String(BATCH),
    String(repeats),
    ...files,
    '--paced',
  ]);

  const tf = await loadTensorflow();
  const { model, input } = await referenceCnn(tf, LABELS);
  const decoded = await Promise.all(
    files.map((file) => decodeToPixels(fs.readFileSync(file), input, file)),
  );
  const all = Array.from({ length: images }, (_, i) => decoded[i % decoded.length]!);
  const x = pixelsToTensor(tf, all, input);

  const predictor = fastPredictor(tf, model);
  if (!predictor.native) throw new Error('the reference CNN should run on native ops');
  type Kind = 'menagerie' | 'fast' | 'stock';
  const predict = (kind: Kind, batch: TfNode.Tensor) =>
    kind === 'menagerie' ? predictor(batch) : (model.predict(batch) as TfNode.Tensor);
  // What a batching server does: one predict per batch of 32, probabilities read back.
  const pass = (kind: Kind) => {
    for (let start = 0; start < images; start += BATCH) {
      tf.tidy(() => {
        predict(kind, x.slice(start, Math.min(BATCH, images - start))).dataSync();
      });
    }
  };
  const timedPass = async (kind: Kind): Promise<number> => {
    const uninstall = kind === 'stock' ? undefined : installFastKernels(tf);
    try {
      const { seconds } = await timeIt(() => pass(kind));
      return images / seconds;
    } finally {
      uninstall?.();
    }
  };
  for (const kind of ['menagerie', 'fast', 'stock'] as const) await timedPass(kind);
  await keras.next(); // ready: warmed up

  const rates = {
    keras: [] as number[],
    menagerie: [] as number[],
    fast: [] as number[],
    stock: [] as number[],
  };
  try {
    for (let round = 1; round <= repeats; round++) {
      const { images_per_s: kerasRate } = await keras.step();
      if (typeof kerasRate !== 'number') throw new Error('keras anchor reported no images_per_s');
      rates.keras.push(kerasRate);
      for (const kind of ['menagerie', 'fast', 'stock'] as const) {
        rates[kind].push(await timedPass(kind));
      }
      const line = Object.entries(rates).map(([name, v]) => `${name} ${v.at(-1)!.toFixed(0)}`);
      const load = os.loadavg()[0]!.toFixed(1);
      console.log(`pass ${round}: ${line.join(', ')} images/s (load ${load})`);
    }
  } finally {
    keras.close();
    x.dispose();
    model.dispose();
  }
  const anchor = await keras.next();

  const kerasRate = percentile(rates.keras, 50);
  const oursRate = percentile(rates.menagerie, 50);
  printFigure(
    `keras model.predict batch ${BATCH} (TF ${String(anchor.tf)}, Keras ${String(anchor.keras)})`,
    kerasRate,
    'images/s',
  );
  printFigure(
    `tfjs-node model.predict batch ${BATCH}, stock kernels`,
    percentile(rates.stock, 50),
    'images/s',
  );
  printFigure(
    `tfjs-node model.predict batch ${BATCH}, fast kernels`,
    percentile(rates.fast, 50),
    'images/s',
  );
  printFigure(`menagerie fastPredictor batch ${BATCH} (native ops)`, oursRate, 'images/s');
  const best = (values: number[]) => Math.max(...values);
  printFigure(
    'best-pass ratio, quiet-moment comparison (for information)',
    best(rates.menagerie) / best(rates.keras),
    'x',
  );
  printRatio(`predict-batch ${BATCH} menagerie vs keras model.predict`, oursRate, kerasRate);
}
