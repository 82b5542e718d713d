// `npm run bench -- train-throughput [--examples N] [--rounds R] [--stock]`: training
// images/s of the reference CNN (64×64×3, batch 32, Adam 1e-3) on random tensors, tfjs-node
// with Menagerie's fast kernels and Adam against Keras 3 `model.fit` on TensorFlow 2.21 in
// the same run. Epochs alternate, one of Keras then one of ours, both processes alive, so
// load from other processes hits both alike; each side's figure is the median of its timed
// epochs, warm-up epochs excluded. `--stock` also times tfjs's own kernels and Adam.
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
  const tfjsStock = stock ? await trainer(tf, 'stock', x, y) : undefined;
  const keras = await pacedKeras(python, examples, rounds);

  const rates = { keras: [] as number[], fast: [] as number[], stock: [] as number[] };
  try {
    for (let round = 1; round <= rounds; round++) {
      rates.keras.push(examples / (await keras.epoch()));
      rates.fast.push(await ours.epoch());
      if (tfjsStock) rates.stock.push(await tfjsStock.epoch());
      const line = Object.entries(rates)
        .filter(([, values]) => values.length > 0)
        .map(([name, values]) => `${name} ${values.at(-1)!.toFixed(0)}`);
      console.log(`epoch ${round}: ${line.join(', ')} images/s`);
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
  printFigure('tfjs-node model.fit, fast kernels + FastAdam', oursRate, 'images/s');
  printRatio('train-throughput tfjs-node vs keras model.fit', oursRate, kerasRate);
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

/** A compiled reference CNN that has run its warm-up epoch, under fast or stock kernels. */
async function trainer(
  tf: Tf,
  kind: 'fast' | 'stock',
  x: TfNode.Tensor,
  y: TfNode.Tensor,
): Promise<EpochTimer> {
  const { model, input } = await referenceCnn(tf, LABELS);
  if (input.size !== SIZE)
    throw new Error(`the cnn plugin's default input is ${input.size}, expected ${SIZE}`);
  model.compile({
    optimizer: kind === 'fast' ? createFastAdam(tf, { learningRate: 1e-3 }) : tf.train.adam(1e-3),
    loss: 'categoricalCrossentropy',
    metrics: ['accuracy'],
  });
  // Kernels are process-wide: switch them for each call, so the two kinds can alternate.
  const withKernels = async <T>(fn: () => Promise<T>): Promise<T> => {
    const uninstall = kind === 'fast' ? installFastKernels(tf) : undefined;
    try {
      return await fn();
    } finally {
      uninstall?.();
    }
  };
  const epoch = () => model.fit(x, y, { batchSize: BATCH, epochs: 1, verbose: 0 });
  await withKernels(epoch);
  return {
    epoch: () =>
      withKernels(async () => {
        const { seconds } = await timeIt(epoch);
        return x.shape[0]! / seconds;
      }),
  };
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
