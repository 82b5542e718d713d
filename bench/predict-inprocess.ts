// `npm run bench -- predict-inprocess [--calls N] [--rounds R]`: one image end to end in process, the
// way the GraphQL predict resolver classifies it: JPEG bytes in memory → the serving
// InferenceEngine (serving/inference-engine.ts) following the `faces` champion, the
// reference CNN loaded through the registry and the `menagerie:cnn` plugin
// (serving/served-model.ts): its 'tensorflow' decoder (libjpeg at a reduced DCT scale in the
// JPEG decoder processes, bilinear to 64×64), one forward pass with its embedding,
// probabilities back in JS; p50/p99 over R × N calls one at a time. Against Keras 3 on the
// same model and images, decoding with Pillow at the same reduced scale, then bilinear
// (bench/anchors/predict_keras.py): `model(x)` (the ratio) and `model.predict` (for
// comparison). Rounds alternate, N calls of Keras then N of ours, both processes alive, so
// load from other processes hits both alike. Real 512×512 AFHQ JPEGs from ../shared/samples,
// read at run time.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { openWorkspace } from '../cli/workspace.js';
import { loadTensorflow } from '../tf/tensorflow.js';
import { pacedAnchor } from './paced-anchor.js';
import { ensurePythonEnv } from './python-env.js';
import { KERAS_ANCHOR_PACKAGES } from './reference-cnn.js';
import { REFERENCE_LABELS, servedReferenceEngine } from './reference-champion.js';
import { loadAverage, numberFlag, percentile, printFigure, printRatio } from './report.js';

export const SAMPLE_DIR = path.resolve(import.meta.dirname, '../../shared/samples/afhq-mini/cat');
const WARMUP = 20;

export async function run(args: string[]): Promise<void> {
  const calls = numberFlag(args, '--calls', 100);
  const rounds = numberFlag(args, '--rounds', 5);
  const files = sampleJpegs();
  const images = files.map((file) => fs.readFileSync(file));
  const { python } = await ensurePythonEnv({ packages: KERAS_ANCHOR_PACKAGES });
  console.log(
    `${files.length} JPEGs, ${rounds} rounds of ${calls} calls a side; load average ${loadAverage()}`,
  );
  const keras = pacedAnchor(python, [
    path.join(import.meta.dirname, 'anchors/predict_keras.py'),
    'single',
    String(calls),
    ...files,
    '--paced',
  ]);

  const tf = await loadTensorflow();
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'menagerie-predict-inprocess-'));
  const workspace = await openWorkspace({ dataDir });
  const latencies: number[] = [];
  let anchor: Record<string, unknown> = {};
  try {
    const engine = await servedReferenceEngine(workspace);
    let done = 0;
    const ourCalls = async (count: number, record: boolean) => {
      for (let i = 0; i < count; i++, done++) {
        const started = performance.now();
        // As the resolver asks (serving/prediction-service.ts): with the embedding.
        const prediction = await engine.predict(images[done % images.length]!, {
          embedding: true,
        });
        const ms = performance.now() - started;
        if (prediction.probabilities.length !== REFERENCE_LABELS.length)
          throw new Error('wrong output size');
        if (record) latencies.push(ms);
      }
    };
    try {
      await ourCalls(WARMUP, false);
      const tensorsBefore = tf.memory().numTensors;
      await keras.next(); // ready: warmed up
      for (let round = 1; round <= rounds; round++) {
        const step = await keras.step();
        await ourCalls(calls, true);
        console.log(
          `round ${round}: keras model(x) p50 ${percentile(step.call_ms as number[], 50).toFixed(2)} ms, ` +
            `menagerie p50 ${percentile(latencies.slice(-calls), 50).toFixed(2)} ms; load ${loadAverage()}`,
        );
      }
      if (tf.memory().numTensors !== tensorsBefore) throw new Error('predict leaked tensors');
    } finally {
      keras.close();
      await engine.close();
    }
    anchor = await keras.next();
  } finally {
    await workspace.close();
    fs.rmSync(dataDir, { recursive: true, force: true });
  }
  const figure = (key: string) => {
    const value = anchor[key];
    if (typeof value !== 'number') throw new Error(`keras anchor reported no ${key}`);
    return value;
  };

  const versions = `TF ${String(anchor.tf)}, Keras ${String(anchor.keras)}`;
  printFigure(
    `keras model.predict p50 (${versions}, Pillow draft decode)`,
    figure('predict_p50_ms'),
    'ms',
  );
  printFigure('keras model.predict p99', figure('predict_p99_ms'), 'ms');
  printFigure(
    'python Pillow draft decode + bilinear resize alone p50',
    figure('decode_p50_ms'),
    'ms',
  );
  printFigure('keras model(x, training=False) p50', figure('call_p50_ms'), 'ms');
  printFigure('keras model(x, training=False) p99', figure('call_p99_ms'), 'ms');
  const p50 = percentile(latencies, 50);
  printFigure('menagerie InferenceEngine.predict p50', p50, 'ms');
  printFigure('menagerie InferenceEngine.predict p99', percentile(latencies, 99), 'ms');
  printFigure(
    'speed-up vs keras model.predict p50 (for comparison)',
    figure('predict_p50_ms') / p50,
    'x',
  );
  console.log(`load average after: ${loadAverage()}`);
  // As calls per second, so the ratio reads as a speed-up: keras p50 ÷ ours.
  printRatio(
    'predict-inprocess p50 menagerie InferenceEngine vs keras model(x) (speed-up)',
    1000 / p50,
    1000 / figure('call_p50_ms'),
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
