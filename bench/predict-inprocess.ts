// `npm run bench -- predict-inprocess [--calls N]`: one image end to end in process, JPEG
// bytes in memory → decode + resize to 64×64 (data/preprocess.ts, what serving runs) →
// reference CNN → probabilities in JS, p50/p99 over N calls, against Keras 3 on one image
// with Pillow decode + resize, through `model.predict` (the ratio) and through a direct
// `model(x, training=False)` call (for information). Real 512×512 AFHQ JPEGs from
// ../shared/samples, read at run time.
import fs from 'node:fs';
import path from 'node:path';
import { loadTensorflow } from '../tf/tensorflow.js';
import { fastPredictor } from '../tf/native-predictor.js';
import { decodeToPixels, pixelsToTensor } from '../data/preprocess.js';
import { ensurePythonEnv, runPythonJson } from './python-env.js';
import { KERAS_ANCHOR_PACKAGES, referenceCnn } from './reference-cnn.js';
import { percentile, printFigure, printRatio } from './report.js';

export const SAMPLE_DIR = path.resolve(import.meta.dirname, '../../shared/samples/afhq-mini/cat');
const LABELS = ['cat', 'dog', 'wild'];
const WARMUP = 20;

export async function run(args: string[]): Promise<void> {
  const at = args.indexOf('--calls');
  const calls = at >= 0 ? Number(args[at + 1]) : 500;
  if (!Number.isInteger(calls) || calls < 10) throw new Error('--calls takes an integer ≥ 10');
  const files = sampleJpegs();
  const { python } = await ensurePythonEnv({ packages: KERAS_ANCHOR_PACKAGES });

  const anchor = await runPythonJson(python, [
    path.join(import.meta.dirname, 'anchors/predict_keras.py'),
    'single',
    String(calls),
    ...files,
  ]);
  const figure = (key: string) => {
    const value = anchor[key];
    if (typeof value !== 'number') throw new Error(`keras anchor reported no ${key}`);
    return value;
  };

  const tf = await loadTensorflow();
  const { model, input } = await referenceCnn(tf, LABELS);
  const predict = fastPredictor(tf, model); // native ops, as serving should run them
  const images = files.map((file) => fs.readFileSync(file));
  const predictOne = async (bytes: Buffer): Promise<Float32Array> => {
    const pixels = await decodeToPixels(bytes, input);
    return tf.tidy(() => {
      const probabilities = predict(pixelsToTensor(tf, [pixels], input));
      return probabilities.dataSync() as Float32Array;
    });
  };
  const latencies: number[] = [];
  const decodeOnly: number[] = [];
  const tensorsBefore = tf.memory().numTensors;
  for (let i = 0; i < WARMUP + calls; i++) {
    const bytes = images[i % images.length]!;
    const started = performance.now();
    const probabilities = await predictOne(bytes);
    const ms = performance.now() - started;
    if (probabilities.length !== LABELS.length) throw new Error('wrong output size');
    if (i >= WARMUP) latencies.push(ms);
  }
  for (let i = 0; i < calls; i++) {
    const started = performance.now();
    await decodeToPixels(images[i % images.length]!, input);
    decodeOnly.push(performance.now() - started);
  }
  if (tf.memory().numTensors !== tensorsBefore) throw new Error('predict leaked tensors');
  model.dispose();

  const versions = `TF ${String(anchor.tf)}, Keras ${String(anchor.keras)}`;
  printFigure(
    `keras model.predict p50 (${versions}, Pillow decode+resize)`,
    figure('predict_p50_ms'),
    'ms',
  );
  printFigure('keras model.predict p99', figure('predict_p99_ms'), 'ms');
  printFigure('keras model(x, training=False) p50', figure('call_p50_ms'), 'ms');
  printFigure('keras model(x, training=False) p99', figure('call_p99_ms'), 'ms');
  printFigure('python Pillow decode+resize alone p50', figure('decode_p50_ms'), 'ms');
  const p50 = percentile(latencies, 50);
  printFigure('menagerie sharp decode+resize alone p50', percentile(decodeOnly, 50), 'ms');
  printFigure('menagerie decode+resize+predict p50', p50, 'ms');
  printFigure('menagerie decode+resize+predict p99', percentile(latencies, 99), 'ms');
  printFigure('speed-up vs keras model(x) p50 (for information)', figure('call_p50_ms') / p50, 'x');
  // As calls per second, so the ratio reads as a speed-up: keras p50 ÷ ours.
  printRatio(
    'predict-inprocess p50 menagerie vs keras model.predict (speed-up)',
    1000 / p50,
    1000 / figure('predict_p50_ms'),
  );
}

/** The AFHQ sample JPEGs, by absolute path; never copied into the repository. */
export function sampleJpegs(): string[] {
  if (!fs.existsSync(SAMPLE_DIR)) throw new Error(`no sample images in ${SAMPLE_DIR}`);
  const files = fs
    .readdirSync(SAMPLE_DIR)
    .filter((name) => /\.jpe?g$/i.test(name))
    .sort()
    .map((name) => path.join(SAMPLE_DIR, name));
  if (files.length === 0) throw new Error(`no JPEGs in ${SAMPLE_DIR}`);
  return files;
}
