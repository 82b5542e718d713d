// `npm run bench -- train-throughput [--examples N] [--rounds R] [--stock]`: training
// images/s of the reference CNN (64×64×3, batch 32, Adam 1e-3) on random tensors, tfjs-node
// against Keras 3 `model.fit` on TensorFlow 2.21 in the same run. Ours, each with the fast
// kernels and fused Adam: a loop of `fastTrainStep` (native forward and backward passes,
// tf/fast-train-step.ts; the ratio printed last), a loop of `optimizer.minimize` over
// `model.apply` (tfjs's gradient tape: the trainer's fallback for models the native step
// does not cover) and `model.fit`.
// Epochs alternate, one of Keras then one of each of ours, all processes alive, so load
// from other processes hits all alike; each figure is the median of its timed epochs,
// warm-up epochs excluded, with the load average printed per round. `--stock` also times
// `model.fit` with tfjs's own kernels and Adam.
import os from 'node:os';
import { spawn } from 'node:child_process';
import path from 'node:path';
import readline from 'node:readline';
import type * as TfNode from '@tensorflow/tfjs-node';
import { loadTensorflow } from '../tf/tensorflow.js';
import type { ModelBuildContext } from '../plugin-api/plugin.js';
import { createFastAdam, installFastKernels } from '../tf/fast-kernels.js';
import { fastTrainStep } from '../tf/fast-train-step.js';
import { ensurePythonEnv } from './python-env.js';
import { KERAS_ANCHOR_PACKAGES, referenceCnn } from './reference-cnn.js';
import { percentile, printFigure, printRatio, timeIt, numberFlag } from './report.js';

type Tf = ModelBuildContext['tf'];

const BATCH = 32;
const SIZE = 64;
const LABELS = ['cat', 'dog', 'wild'];
const CLASSES = LABELS.length;

export async function run(args: string[]): Promise<void> {
  const examples = numberFlag(args, '--examples', 3200);
  const rounds = numberFlag(args, '--rounds', 4);
  const stock = args.includes('--stock');
  const { python } = await ensurePythonEnv({ packages: KERAS_ANCHOR_PACKAGES });
  const tf = await loadTensorflow();

  const x = tf.randomUniform([examples, SIZE, SIZE, 3]);
  const y = tf.tidy(() => tf.oneHot(tf.randomUniform([examples], 0, CLASSES, 'int32'), CLASSES));
  const ours = await trainer(tf, 'fast', x, y);
  const step = await trainer(tf, 'step', x, y);
  const tape = await trainer(tf, 'tape', x, y);
  const tfjsStock = stock ? await trainer(tf, 'stock', x, y) : undefined;
  const keras = await pacedKeras(python, examples, rounds);

  const rates = {
    keras: [] as number[],
    fast: [] as number[],
    step: [] as number[],
    tape: [] as number[],
    stock: [] as number[],
  };
  try {
    for (let round = 1; round <= rounds; round++) {
      rates.keras.push(examples / (await keras.epoch()));
      rates.fast.push(await ours.epoch());
      rates.step.push(await step.epoch());
      rates.tape.push(await tape.epoch());
      if (tfjsStock) rates.stock.push(await tfjsStock.epoch());
      const line = Object.entries(rates)
        .filter(([, values]) => values.length > 0)
        .map(([name, values]) => `${name} ${values.at(-1)!.toFixed(0)}`);
      const load = os.loadavg()[0]!.toFixed(1);
      console.log(`epoch ${round}: ${line.join(', ')} images/s (load ${load})`);
    }
  } finally {
    keras.close();
    tf.dispose([x, y]);
  }
  const summary = await keras.summary;

  const kerasRate = percentile(rates.keras, 50);
  const oursRate = percentile(rates.fast, 50);
  printFigure(
    `keras 3 model.fit (TF ${String(summary.tf)}, Keras ${String(summary.keras)}, XLA ${String(summary.jit_compile)})`,
    kerasRate,
    'images/s',
  );
  if (tfjsStock) {
    printFigure(
      'tfjs-node model.fit, stock kernels + tf.train.adam',
      percentile(rates.stock, 50),
      'images/s',
    );
  }
  printFigure('tfjs-node model.fit, fast kernels + fused Adam', oursRate, 'images/s');
  printFigure('  its ratio to keras model.fit', oursRate / kerasRate, 'x');
  printFigure(
    'tfjs-node optimizer.minimize loop, fast kernels + fused Adam',
    percentile(rates.tape, 50),
    'images/s',
  );
  const stepRate = percentile(rates.step, 50);
  printFigure('menagerie fastTrainStep loop + fused Adam', stepRate, 'images/s');
  // Keras's epochs swing 5-8× on a loaded machine (its spinning thread pools collapse under
  // contention) where ours stay within 2×; the best epochs are the quiet-machine comparison.
  const best = (values: number[]) => Math.max(...values);
  printFigure('keras best epoch (for information)', best(rates.keras), 'images/s');
  printFigure('fastTrainStep best epoch (for information)', best(rates.step), 'images/s');
  printFigure('  best-epoch ratio', best(rates.step) / best(rates.keras), 'x');
  printRatio('train-throughput fastTrainStep vs keras model.fit', stepRate, kerasRate);
}

/**
 * The Keras anchor as a live process whose epochs run one at a time on request, so its
 * epochs and ours alternate and share whatever load the machine has at the moment.
 */
async function pacedKeras(python: string, examples: number, epochs: number) {
  const script = path.join(import.meta.dirname, 'anchors/train_throughput.py');
  const args = [
    script,
    String(examples),
    String(BATCH),
    String(epochs),
    String(SIZE),
    String(CLASSES),
    '--paced',
  ];
  const child = spawn(python, args, { stdio: ['pipe', 'pipe', 'pipe'] });
  let stderr = '';
  child.stderr.on('data', (chunk: Buffer) => (stderr = (stderr + chunk.toString()).slice(-4000)));
  const lines = readline.createInterface({ input: child.stdout })[Symbol.asyncIterator]();
  const exited = new Promise<number>((resolve) => child.on('close', (code) => resolve(code ?? 1)));
  const next = async (): Promise<Record<string, unknown>> => {
    const { value, done } = await lines.next();
    if (done)
      throw new Error(
        `keras anchor exited (${await exited}):\n${stderr.split('\n').slice(-15).join('\n')}`,
      );
    return JSON.parse(value) as Record<string, unknown>;
  };
  await next(); // the warm-up epoch
  let summary: Promise<Record<string, unknown>> | undefined;
  return {
    async epoch(): Promise<number> {
      child.stdin.write('\n');
      const { seconds } = await next();
      if (typeof seconds !== 'number') throw new Error('keras anchor reported no epoch time');
      return seconds;
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

interface EpochTimer {
  /** Runs one epoch of model.fit and returns its images/s. */
  epoch(): Promise<number>;
}

/**
 * A compiled reference CNN that has run its warm-up epoch: `model.fit` under fast or stock
 * kernels, or a loop of fastTrainStep or optimizer.minimize under fast kernels.
 */
async function trainer(
  tf: Tf,
  kind: 'fast' | 'stock' | 'step' | 'tape',
  x: TfNode.Tensor,
  y: TfNode.Tensor,
): Promise<EpochTimer> {
  const { model, input } = await referenceCnn(tf, LABELS);
  if (input.size !== SIZE)
    throw new Error(`the cnn plugin's default input is ${input.size}, expected ${SIZE}`);
  model.compile({
    optimizer: kind === 'stock' ? tf.train.adam(1e-3) : createFastAdam(tf, { learningRate: 1e-3 }),
    loss: 'categoricalCrossentropy',
    metrics: ['accuracy'],
  });
  // Kernels are process-wide: switch them for each call, so the two kinds can alternate.
  const withKernels = async <T>(fn: () => Promise<T>): Promise<T> => {
    const uninstall = kind === 'stock' ? undefined : installFastKernels(tf);
    try {
      return await fn();
    } finally {
      uninstall?.();
    }
  };
  const epoch = async (): Promise<void> => {
    if (kind === 'step' || kind === 'tape') trainerLoopEpoch(tf, model, kind, x, y);
    else await model.fit(x, y, { batchSize: BATCH, epochs: 1, verbose: 0 });
  };
  await withKernels(epoch);
  return {
    epoch: () =>
      withKernels(async () => {
        const { seconds } = await timeIt(epoch);
        return x.shape[0]! / seconds;
      }),
  };
}

/**
 * One epoch as training/trainer.ts runs it: per batch, one step (fastTrainStep, or
 * `optimizer.minimize` over `model.apply(xs, { training: true })` with categorical
 * cross-entropy), the loss and the count of correct predictions summed on the device and
 * read once per epoch.
 */
function trainerLoopEpoch(
  tf: Tf,
  model: TfNode.LayersModel,
  kind: 'step' | 'tape',
  x: TfNode.Tensor,
  y: TfNode.Tensor,
) {
  const optimizer = model.optimizer;
  const run =
    kind === 'step' ? fastTrainStep(tf, model, optimizer) : tapeStep(tf, model, optimizer);
  if (kind === 'step' && !run.native) throw new Error('the reference CNN should train natively');
  const examples = x.shape[0]!;
  let totals: TfNode.Tensor[] = [tf.scalar(0), tf.scalar(0)];
  for (let start = 0; start < examples; start += BATCH) {
    const size = Math.min(BATCH, examples - start);
    const next = tf.tidy(() => {
      const { loss, correct } = run(x.slice(start, size), y.slice(start, size));
      const sums = [totals[0]!.add(loss), totals[1]!.add(correct)];
      tf.dispose([loss, correct]); // the tape step keeps `correct` out of the tape's scope
      return sums;
    });
    tf.dispose(totals);
    totals = next;
  }
  const read = totals.map((t) => t.dataSync()[0]);
  tf.dispose(totals);
  return read;
}

/** training/trainer.ts's step today: the gradient tape over `model.apply`. */
function tapeStep(tf: Tf, model: TfNode.LayersModel, optimizer: TfNode.Optimizer) {
  const variables = model.trainableWeights.map((w) => w.read() as TfNode.Variable);
  return Object.assign(
    (xs: TfNode.Tensor, ys: TfNode.Tensor) => {
      let correct: TfNode.Scalar | undefined;
      const loss = optimizer.minimize(
        () => {
          const probs = model.apply(xs, { training: true }) as TfNode.Tensor;
          correct = tf.keep(probs.argMax(-1).equal(ys.argMax(-1)).sum<TfNode.Scalar>());
          const clipped = probs.clipByValue(1e-7, 1 - 1e-7);
          return ys.mul(clipped.log()).sum(-1).neg().mean<TfNode.Scalar>();
        },
        true,
        variables,
      )!;
      return { loss, correct: correct! };
    },
    { native: false },
  );
}
