// `npm run bench -- predict-batch [--images N] [--repeats R]`: batched classification
// throughput as the GraphQL predictBatch resolver runs it: N JPEGs (the AFHQ sample JPEGs,
// cycled) sent 32 at a time to the serving InferenceEngine's `predictBatch` (the model's
// 'tensorflow' decoder: libjpeg at a reduced DCT scale in the JPEG decoder processes, then
// bilinear; one forward pass of the champion per 32, loaded through the registry
// and the `menagerie:cnn` plugin). Against Keras 3 on the same model and JPEGs
// (bench/anchors/predict_keras.py): Pillow decode at the same reduced scale and a bilinear
// resize, then `model(x)`
// per batch of 32, and `model.predict(x, batch_size=32)` over the pass's decoded images
// plus the same decode; the ratio is against the faster of the two in the run. Passes alternate, one of Keras then one of ours, both processes alive,
// so load from other processes hits both alike; each figure is the median of R passes.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { openWorkspace } from '../cli/workspace.js';
import { pacedAnchor } from './paced-anchor.js';
import { sampleJpegs } from './predict-inprocess.js';
import { ensurePythonEnv } from './python-env.js';
import { KERAS_ANCHOR_PACKAGES } from './reference-cnn.js';
import { servedReferenceEngine } from './reference-champion.js';
import { loadAverage, numberFlag, percentile, printFigure, printRatio, timeIt } from './report.js';

const BATCH = 32;

export async function run(args: string[]): Promise<void> {
  const count = numberFlag(args, '--images', 3200);
  const repeats = numberFlag(args, '--repeats', 5);
  const files = sampleJpegs();
  const { python } = await ensurePythonEnv({ packages: KERAS_ANCHOR_PACKAGES });
  console.log(
    `${count} JPEGs a pass (${files.length} distinct), batches of ${BATCH}, ${repeats} passes a ` +
      `side; load average ${loadAverage()}`,
  );
  const keras = pacedAnchor(python, [
    path.join(import.meta.dirname, 'anchors/predict_keras.py'),
    'batch',
    String(count),
    String(BATCH),
    ...files,
    '--paced',
  ]);

  const bytes = files.map((file) => fs.readFileSync(file));
  const order = Array.from({ length: count }, (_, i) => bytes[i % bytes.length]!);
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'menagerie-predict-batch-'));
  const workspace = await openWorkspace({ dataDir });
  const rates = { call: [] as number[], predict: [] as number[], menagerie: [] as number[] };
  let versions = '';
  try {
    const engine = await servedReferenceEngine(workspace);
    // What a client of predictBatch does: one call per 32 images, answers read back.
    const pass = async () => {
      const { seconds } = await timeIt(async () => {
        for (let start = 0; start < count; start += BATCH) {
          const answers = await engine.predictBatch(order.slice(start, start + BATCH), {
            embedding: true,
          });
          if (answers.length !== Math.min(BATCH, count - start)) throw new Error('lost answers');
        }
      });
      return count / seconds;
    };
    try {
      await pass(); // warm-up
      await keras.next(); // ready: warmed up
      for (let round = 1; round <= repeats; round++) {
        const step = await keras.step();
        rates.call.push(Number(step.call_images_per_s));
        rates.predict.push(Number(step.predict_images_per_s));
        rates.menagerie.push(await pass());
        const line = Object.entries(rates).map(([name, v]) => `${name} ${v.at(-1)!.toFixed(0)}`);
        console.log(`pass ${round}: ${line.join(', ')} images/s (load ${loadAverage()})`);
      }
    } finally {
      keras.close();
      await engine.close();
    }
    const summary = await keras.next();
    versions = `TF ${String(summary.tf)}, Keras ${String(summary.keras)}`;
  } finally {
    await workspace.close();
    fs.rmSync(dataDir, { recursive: true, force: true });
  }

  const callRate = percentile(rates.call, 50);
  const predictRate = percentile(rates.predict, 50);
  const oursRate = percentile(rates.menagerie, 50);
  printFigure(
    `keras model.predict batch ${BATCH} + Pillow decode (${versions})`,
    predictRate,
    'images/s',
  );
  printFigure(`keras model(x) batch ${BATCH} + Pillow decode`, callRate, 'images/s');
  printFigure(`menagerie InferenceEngine.predictBatch ${BATCH}`, oursRate, 'images/s');
  console.log(`load average after: ${loadAverage()}`);
  // Against whichever Keras way was faster in this run.
  const [name, kerasRate] =
    callRate >= predictRate ? ['model(x)', callRate] : ['model.predict', predictRate];
  printRatio(
    `predict-batch ${BATCH} menagerie InferenceEngine vs keras ${name}`,
    oursRate,
    kerasRate,
  );
}
