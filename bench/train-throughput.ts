// `npm run bench -- train-throughput [--examples N] [--rounds R] [--stock]`: training
// images/s of the reference CNN (Adam 1e-3) on random tensors, tfjs-node against Keras 3
// `model.fit` on TensorFlow 2.21 in the same run, at three operating points: 64×64 batch 32
// (the default `menagerie:cnn`, the headline), 64×64 batch 128 and 96×96 batch 32. Ours, each
// with the fast kernels and fused Adam: a loop of `fastTrainStep` (native forward and
// backward passes, tf/fast-train-step.ts, what training/trainer.ts runs; the ratios) and,
// at the headline point only, a loop of `optimizer.minimize` over `model.apply` (tfjs's
// gradient tape: the trainer's fallback for models the native step does not cover) and
// `model.fit`. Epochs alternate, one of Keras then one of each of ours, all processes alive,
// so load from other processes hits all alike; each figure is the median of its timed
// epochs, warm-up epochs excluded, with the load average printed per round. `--stock` also
// times `model.fit` with tfjs's own kernels and Adam at the headline point.
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
import { loadAverage, numberFlag, percentile, printFigure, printRatio, timeIt } from './report.js';

type Tf = ModelBuildContext['tf'];

/** Input side × batch size; the first is the headline, printed last. */
const POINTS = [
  { size: 64, batch: 32 },
  { size: 64, batch: 128 },
  { size: 96, batch: 32 },
] as const;
type Point = (typeof POINTS)[number];
const LABELS = ['cat', 'dog', 'wild'];
const CLASSES = LABELS.length;

export async function run(args: string[]): Promise<void> {
  const examples = numberFlag(args, '--examples', 3200);
  const rounds = numberFlag(args, '--rounds', 4);
  const stock = args.includes('--stock');
  const { python } = await ensurePythonEnv({ packages: KERAS_ANCHOR_PACKAGES });
  const tf = await loadTensorflow();
  console.log(
    `${examples} examples an epoch, ${rounds} timed epochs a trainer; load average ${loadAverage()}`,
  );
  const results: { point: Point; keras: number; step: number }[] = [];
  // The extra points first, so the headline's figures and ratio are printed last.
  for (const point of [...POINTS.slice(1), POINTS[0]]) {
    const headline = point === POINTS[0];
    results.push(await measurePoint(tf, python, point, { examples, rounds, headline, stock }));
  }
  for (const { point, keras, step } of results.slice(0, -1)) {
    printFigure(`${label(point)}: fastTrainStep vs keras model.fit`, step / keras, 'x');
  }
  console.log(`load average after: ${loadAverage()}`);
  const last = results.at(-1)!;
  printRatio(
    `train-throughput ${label(last.point)} fastTrainStep vs keras model.fit`,
    last.step,
    last.keras,
  );
}

function label(point: Point): string {
  return `${point.size}×${point.size} batch ${point.batch}`;
}

async function measurePoint(
  tf: Tf,
  python: string,
  point: Point,
  options: { examples: number; rounds: number; headline: boolean; stock: boolean },
): Promise<{ point: Point; keras: number; step: number }> {
  const { examples, rounds, headline } = options;
  const { size } = point;
  console.log(`-- ${label(point)}`);
  const x = tf.randomUniform([examples, size, size, 3]);
  const y = tf.tidy(() => tf.oneHot(tf.randomUniform([examples], 0, CLASSES, 'int32'), CLASSES));
  const kinds: Kind[] = headline
    ? ['step', 'tape', 'fast', ...(options.stock ? (['stock'] as const) : [])]
    : ['step'];
  const trainers = new Map<Kind, EpochTimer>();
  for (const kind of kinds) trainers.set(kind, await trainer(tf, kind, point, x, y));
  const keras = await pacedKeras(python, examples, rounds, point);

  const rates = new Map<string, number[]>([
    ['keras', []],
    ...kinds.map((k) => [k, []] as [string, number[]]),
  ]);
  try {
    for (let round = 1; round <= rounds; round++) {
      rates.get('keras')!.push(examples / (await keras.epoch()));
      for (const [kind, timer] of trainers) rates.get(kind)!.push(await timer.epoch());
      const line = [...rates].map(([name, values]) => `${name} ${values.at(-1)!.toFixed(0)}`);
      console.log(`epoch ${round}: ${line.join(', ')} images/s (load ${loadAverage()})`);
    }
  } finally {
    keras.close();
    tf.dispose([x, y]);
  }
  const summary = await keras.summary;
  const median = (name: string) => percentile(rates.get(name)!, 50);
  const kerasRate = median('keras');
  printFigure(
    `${label(point)} keras 3 model.fit (TF ${String(summary.tf)}, Keras ${String(summary.keras)}, XLA ${String(summary.jit_compile)})`,
    kerasRate,
    'images/s',
  );
  if (rates.has('stock')) {
    printFigure(
      `${label(point)} tfjs-node model.fit, stock kernels + tf.train.adam`,
      median('stock'),
      'images/s',
    );
  }
  if (rates.has('fast')) {
    printFigure(
      `${label(point)} tfjs-node model.fit, fast kernels + fused Adam`,
      median('fast'),
      'images/s',
    );
  }
  if (rates.has('tape')) {
    printFigure(
      `${label(point)} tfjs-node optimizer.minimize loop, fast kernels + fused Adam`,
      median('tape'),
      'images/s',
    );
  }
  const stepRate = median('step');
  printFigure(`${label(point)} menagerie fastTrainStep loop + fused Adam`, stepRate, 'images/s');
  // Keras's epochs swing 5-8× on a loaded machine (its spinning thread pools collapse under
  // contention) where ours stay within 2×; the best epochs are the quiet-machine comparison.
  const best = (name: string) => Math.max(...rates.get(name)!);
  printFigure(
    `${label(point)} best-epoch ratio (for information)`,
    best('step') / best('keras'),
    'x',
  );
  return { point, keras: kerasRate, step: stepRate };
}

/**
 * The Keras anchor as a live process whose epochs run one at a time on request, so its
 * epochs and ours alternate and share whatever load the machine has at the moment.
 */
async function pacedKeras(python: string, examples: number, epochs: number, point: Point) {
  const script = path.join(import.meta.dirname, 'anchors/train_throughput.py');
  const args = [
    script,
    String(examples),
    String(point.batch),
    String(epochs),
    String(point.size),
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
type Kind = 'fast' | 'stock' | 'step' | 'tape';

async function trainer(
  tf: Tf,
  kind: Kind,
  point: Point,
  x: TfNode.Tensor,
  y: TfNode.Tensor,
): Promise<EpochTimer> {
  const { model, input } = await referenceCnn(tf, LABELS, point.size);
  if (input.size !== point.size)
    throw new Error(`the cnn plugin built input ${input.size}, expected ${point.size}`);
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
    if (kind === 'step' || kind === 'tape') trainerLoopEpoch(tf, model, kind, point.batch, x, y);
    else await model.fit(x, y, { batchSize: point.batch, epochs: 1, verbose: 0 });
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
  batch: number,
  x: TfNode.Tensor,
  y: TfNode.Tensor,
) {
  const optimizer = model.optimizer;
  const run =
    kind === 'step' ? fastTrainStep(tf, model, optimizer) : tapeStep(tf, model, optimizer);
  if (kind === 'step' && !run.native) throw new Error('the reference CNN should train natively');
  const examples = x.shape[0]!;
  let totals: TfNode.Tensor[] = [tf.scalar(0), tf.scalar(0)];
  for (let start = 0; start < examples; start += batch) {
    const size = Math.min(batch, examples - start);
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
