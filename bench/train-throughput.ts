// `npm run bench -- train-throughput [--examples N] [--rounds R] [--stock]`: training
// images/s of the reference CNN (64×64×3, batch 32, Adam 1e-3) on random tensors, tfjs-node
// with Menagerie's fast kernels and fused Adam against Keras 3 `model.fit` on TensorFlow
// 2.21 in the same run, two ways: `model.fit`, and the trainer's own loop (one
// `optimizer.minimize` over `model.apply` per batch, as training/trainer.ts runs it; the
// ratio printed last). Epochs alternate, one of Keras then one of each of ours, all
// processes alive, so load from other processes hits all alike; each figure is the median
// of its timed epochs, warm-up epochs excluded, with the load average printed per round.
// `--stock` also times tfjs's own kernels and Adam.
import os from 'node:os';
import { spawn } from 'node:child_process';
import path from 'node:path';
import readline from 'node:readline';
import type * as TfNode from '@tensorflow/tfjs-node';
import { loadTensorflow } from '../data/tensorflow.js';
import type { ModelBuildContext } from '../plugins/plugin.js';
import { createFastAdam, installFastKernels } from '../training/fast-step.js';
import { ensurePythonEnv } from './python-env.js';
import { KERAS_ANCHOR_PACKAGES, referenceCnn } from './reference-cnn.js';
import { percentile, printFigure, printRatio, timeIt } from './report.js';

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
  const loop = await trainer(tf, 'loop', x, y);
  const tfjsStock = stock ? await trainer(tf, 'stock', x, y) : undefined;
  const keras = await pacedKeras(python, examples, rounds);

  const rates = {
    keras: [] as number[],
    fast: [] as number[],
    loop: [] as number[],
    stock: [] as number[],
  };
  try {
    for (let round = 1; round <= rounds; round++) {
      rates.keras.push(examples / (await keras.epoch()));
      rates.fast.push(await ours.epoch());
      rates.loop.push(await loop.epoch());
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
  const loopRate = percentile(rates.loop, 50);
  printFigure('tfjs-node trainer loop, fast kernels + fused Adam', loopRate, 'images/s');
  printRatio('train-throughput trainer loop vs keras model.fit', loopRate, kerasRate);
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
 * kernels, or the trainer's loop under fast kernels.
 */
async function trainer(
  tf: Tf,
  kind: 'fast' | 'stock' | 'loop',
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
    if (kind === 'loop') trainerLoopEpoch(tf, model, x, y);
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
 * One epoch as training/trainer.ts runs it: per batch, one `optimizer.minimize` over
 * `model.apply(xs, { training: true })` with categorical cross-entropy, and the count of
 * correct predictions kept for the epoch's accuracy; loss and count read once per epoch.
 */
function trainerLoopEpoch(tf: Tf, model: TfNode.LayersModel, x: TfNode.Tensor, y: TfNode.Tensor) {
  const optimizer = model.optimizer;
  const variables = model.trainableWeights.map((w) => w.read() as TfNode.Variable);
  const examples = x.shape[0]!;
  let totals: { loss: TfNode.Tensor; correct: TfNode.Tensor } = {
    loss: tf.scalar(0),
    correct: tf.scalar(0),
  };
  for (let start = 0; start < examples; start += BATCH) {
    const size = Math.min(BATCH, examples - start);
    const next = tf.tidy(() => {
      const xs = x.slice(start, size);
      const ys = y.slice(start, size);
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
      const sums = { loss: totals.loss.add(loss), correct: totals.correct.add(correct!) };
      correct!.dispose();
      return sums;
    });
    tf.dispose([totals.loss, totals.correct]);
    totals = next;
  }
  const read = [totals.loss.dataSync()[0], totals.correct.dataSync()[0]];
  tf.dispose([totals.loss, totals.correct]);
  return read;
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
