// `npm run bench -- predict-batch [--images N] [--repeats R]`: batched inference throughput
// of the reference CNN, batch 32, over N images decoded beforehand (the AFHQ sample JPEGs,
// cycled), against Keras 3 `model.predict(x, batch_size=32)` on the same images. Each side
// runs R passes after a warm-up; its figure is the median pass.
import fs from 'node:fs';
import path from 'node:path';
import { loadTensorflow } from '../data/tensorflow.js';
import { decodeToPixels, pixelsToTensor } from '../data/preprocess.js';
import { sampleJpegs } from './predict-inprocess.js';
import { ensurePythonEnv, runPythonJson } from './python-env.js';
import { KERAS_ANCHOR_PACKAGES, referenceCnn } from './reference-cnn.js';
import { percentile, printFigure, printRatio, timeIt } from './report.js';

const BATCH = 32;
const LABELS = ['cat', 'dog', 'wild'];

export async function run(args: string[]): Promise<void> {
  const images = numberFlag(args, '--images', 3200);
  const repeats = numberFlag(args, '--repeats', 5);
  const files = sampleJpegs();
  const { python } = await ensurePythonEnv({ packages: KERAS_ANCHOR_PACKAGES });
  const anchor = await runPythonJson(python, [
    path.join(import.meta.dirname, 'anchors/predict_keras.py'),
    'batch',
    String(images),
    String(BATCH),
    String(repeats),
    ...files,
  ]);
  const kerasRates = anchor.images_per_s;
  if (!Array.isArray(kerasRates) || !kerasRates.every((r) => typeof r === 'number')) {
    throw new Error(`keras anchor reported no images_per_s: ${JSON.stringify(anchor)}`);
  }

  const tf = await loadTensorflow();
  const { model, input } = await referenceCnn(tf, LABELS);
  const decoded = await Promise.all(
    files.map((file) => decodeToPixels(fs.readFileSync(file), input, file)),
  );
  const all = Array.from({ length: images }, (_, i) => decoded[i % decoded.length]!);
  const x = pixelsToTensor(tf, all, input);

  // What a batching server does: one predict per batch of 32, probabilities read back.
  const pass = () => {
    for (let start = 0; start < images; start += BATCH) {
      tf.tidy(() => {
        const batch = x.slice(start, Math.min(BATCH, images - start));
        (model.predict(batch) as typeof x).dataSync();
      });
    }
  };
  pass();
  const ours: number[] = [];
  for (let i = 0; i < repeats; i++) {
    const { seconds } = await timeIt(pass);
    ours.push(images / seconds);
  }
  x.dispose();
  model.dispose();

  const kerasRate = percentile(kerasRates, 50);
  const oursRate = percentile(ours, 50);
  printFigure(
    `keras model.predict batch ${BATCH} (TF ${String(anchor.tf)}, Keras ${String(anchor.keras)})`,
    kerasRate,
    'images/s',
  );
  printFigure(`menagerie predict batch ${BATCH}`, oursRate, 'images/s');
  printRatio(`predict-batch ${BATCH} menagerie vs keras model.predict`, oursRate, kerasRate);
}

function numberFlag(args: string[], flag: string, fallback: number): number {
  const at = args.indexOf(flag);
  if (at < 0) return fallback;
  const value = Number(args[at + 1]);
  if (!Number.isInteger(value) || value <= 0) {
    throw new Error(`${flag} takes a positive integer, got ${args[at + 1]}`);
  }
  return value;
}
