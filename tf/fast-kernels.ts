/**
 * Faster training steps on tfjs-node. tfjs runs each op eagerly through TFE_Execute, and a
 * few of its kernels and gradients are composed of many full-size ops, or of slow Eigen
 * kernels, where TensorFlow's own graph runs one oneDNN primitive. Profiling the reference
 * CNN (batch 32, 64×64) showed the ReLU gradient, the max-pool gradient (Eigen's scalar
 * `MaxPoolGrad`, ~30× its forward pass), bias gradients (`Sum` over N·H·W) and the
 * optimizer taking most of a step. This module replaces the kernels and gradients; the
 * optimizers are in fast-optimizer.ts. It changes no API, so `model.fit`, `trainOnBatch`
 * and custom loops all benefit.
 *
 * The patches are process-wide and stay until the returned function is called: tfjs keeps
 * one kernel and gradient registry per process, so every op on the tensorflow backend runs
 * them, not only Menagerie's. The trainer installs them before the first training run and
 * serving before the first model loads, and neither removes them. For third-party plugins
 * (their `build`, `onEpochStart`, custom layers, anything they compute with `tf`) this
 * means:
 * - `Sum` over every axis but the last, the ReLU gradient and the max-pool kernels give
 *   results equal to tfjs's up to float rounding (another summation order), not bit for
 *   bit: a plugin comparing numbers exactly with a run in another process may see ~1e-7
 *   differences once training or serving has started in this one.
 * - Without libtensorflow's oneDNN kernels, a max-pool gradient whose window equals its
 *   stride gives every tied maximum the gradient (TensorFlow picks one).
 * - A plugin that registers its own kernel or gradient for `Step`, `Sum`, `MaxPool`,
 *   `MaxPoolGrad`, `FusedConv2D` or the `Relu` gradient loses it when these are installed
 *   after it, and replaces them when registered after; uninstalling restores the kernels
 *   registered at install time and drops any registered since.
 * Scoping them to Menagerie's own steps is not possible: tfjs has no per-call kernel
 * registry, and training and serving run concurrently in one process.
 *
 * ```ts
 * import { loadTensorflow } from './tensorflow.js';
 * import { createFastAdam, installFastKernels } from './fast-kernels.js';
 *
 * const tf = await loadTensorflow();
 * installFastKernels(tf); // once per process, before training
 * model.compile({ optimizer: createFastAdam(tf, { learningRate: 1e-3 }), loss: 'categoricalCrossentropy' });
 * ```
 */
import type * as TfNode from '@tensorflow/tfjs-node';
import {
  maxPoolAttrs,
  nativeOps,
  ONEDNN_KERNEL,
  pair,
  type NativeOps,
  type PoolWindow,
} from './native-ops.js';

type Tf = typeof import('@tensorflow/tfjs-node');
type Tensor = TfNode.Tensor;

const BACKEND = 'tensorflow';
const installed = new WeakMap<Tf, () => void>();

/**
 * Swaps in faster, numerically equivalent kernels and gradients on the native backend;
 * returns a function that restores tfjs's own. Idempotent per `tf` instance.
 *
 * - `Step` (alpha 0, used by every fused `relu` gradient: conv2d and dense layers):
 *   `Sign(Relu(x))`, two native ops instead of five plus two full-size constants.
 * - `Relu` gradient: TensorFlow's single `ReluGrad` op instead of `mul(dy, cast(step(x)))`.
 * - `MaxPool`: oneDNN's forward (`_MklNativeMaxPool`), ~25% faster than eager's kernel.
 * - `MaxPoolGrad`: oneDNN's max-pool backward (`_MklNativeMaxPoolGrad`, what Keras's graph
 *   runs), fed the workspace of a oneDNN forward pass recomputed from the input: exactly
 *   TensorFlow's gradient, ~10× faster than the Eigen kernel eager mode picks. Where
 *   libtensorflow has no oneDNN kernels, pools whose window equals the stride route the
 *   gradient through an equality mask instead (ties: every maximum gets it).
 * - `FusedConv2D` with a bias and a ReLU or no activation (every `conv2d` layer):
 *   oneDNN's convolution with the bias fused (`_MklNativeConv2DWithBias`), then `Relu`,
 *   instead of convolution, a broadcast `Add` and the activation.
 * - `Sum` over every axis but the last (bias gradients of conv and dense layers):
 *   `BiasAddGrad`, ~5× faster than Eigen's reduction over N·H·W.
 */
export function installFastKernels(tf: Tf): () => void {
  const existing = installed.get(tf);
  if (existing) return existing;
  if (tf.getBackend() !== BACKEND) {
    throw new Error(`installFastKernels: backend is '${tf.getBackend()}', expected '${BACKEND}'`);
  }
  const ops = nativeOps(tf);
  const float32 = [ops.type('T')];
  const native = (name: string, inputs: Tensor[]) => ops.run(name, float32, inputs);
  const oneDnnPool = supportsOneDnnPool(tf, ops);
  const oneDnnConv = supportsOneDnnConv(tf, ops);

  const originalStep = tf.getKernel('Step', BACKEND);
  const originalMaxPoolGrad = tf.getKernel('MaxPoolGrad', BACKEND);
  const originalSum = tf.getKernel('Sum', BACKEND);
  const originalFusedConv2D = tf.getKernel('FusedConv2D', BACKEND);
  const originalMaxPool = tf.getKernel('MaxPool', BACKEND);
  const originalReluGrad = tf.getGradient('Relu');

  replaceKernel(tf, {
    kernelName: 'Step',
    backendName: BACKEND,
    kernelFunc: (args) => {
      const x = args.inputs.x as Tensor;
      if (x.dtype !== 'float32' || (args.attrs?.alpha ?? 0) !== 0) {
        return originalStep.kernelFunc(args);
      }
      const relu = native('Relu', [x]);
      const step = native('Sign', [relu]);
      relu.dispose();
      return step;
    },
  });

  replaceKernel(tf, {
    kernelName: 'MaxPoolGrad',
    backendName: BACKEND,
    kernelFunc: (args) => {
      const { dy, input, output } = args.inputs as Record<string, Tensor>;
      const attrs = args.attrs ?? {};
      if (!dy || !input || !output || input.dtype !== 'float32' || input.rank !== 4) {
        return originalMaxPoolGrad.kernelFunc(args);
      }
      const pool = oneDnnPool ? poolAttrs(attrs) : undefined;
      if (pool) return oneDnnPoolGrad(ops, dy, input, pool);
      const window = squareWindow(attrs);
      if (window === undefined) return originalMaxPoolGrad.kernelFunc(args);
      return tf.tidy(() => maskedPoolGrad(tf, dy, input, output, window));
    },
  });

  replaceKernel(tf, {
    kernelName: 'Sum',
    backendName: BACKEND,
    kernelFunc: (args) => {
      const x = args.inputs.x as Tensor;
      if (x.dtype !== 'float32' || x.rank < 2 || args.attrs?.keepDims === true) {
        return originalSum.kernelFunc(args);
      }
      const axes = tf.util.parseAxisParam(args.attrs?.axis as number | number[], x.shape);
      const allButLast = axes.length === x.rank - 1 && axes.every((a, i) => a === i);
      if (!allButLast) return originalSum.kernelFunc(args);
      return ops.run('BiasAddGrad', [...float32, ops.string('data_format', 'NHWC')], [x]);
    },
  });

  replaceKernel(tf, {
    kernelName: 'MaxPool',
    backendName: BACKEND,
    kernelFunc: (args) => {
      const x = args.inputs.x as Tensor;
      const pool = oneDnnPool ? poolAttrs(args.attrs ?? {}) : undefined;
      if (!pool || x.dtype !== 'float32' || x.rank !== 4) return originalMaxPool.kernelFunc(args);
      const [output, workspace] = oneDnnPool2(ops, x, pool);
      workspace.dispose();
      return output;
    },
  });

  replaceKernel(tf, {
    kernelName: 'FusedConv2D',
    backendName: BACKEND,
    kernelFunc: (args) => {
      const { x, filter, bias, preluActivationWeights } = args.inputs as Record<string, Tensor>;
      const attrs = args.attrs ?? {};
      const conv = oneDnnConv ? convAttrs(attrs) : undefined;
      const activation = attrs.activation;
      if (
        !conv ||
        !x ||
        !filter ||
        !bias ||
        preluActivationWeights ||
        x.dtype !== 'float32' ||
        x.rank !== 4 ||
        bias.rank !== 1 ||
        (activation !== 'relu' && activation !== 'linear')
      ) {
        return originalFusedConv2D.kernelFunc(args);
      }
      const linear = oneDnnConvWithBias(ops, x, filter, bias, conv);
      if (activation === 'linear') return linear;
      const relu = native('Relu', [linear]);
      linear.dispose();
      return relu;
    },
  });

  tf.registerGradient({
    kernelName: 'Relu',
    inputsToSave: ['x'],
    gradFunc: (dy, saved) => {
      const [x] = saved;
      if (!x || Array.isArray(dy) || x.dtype !== 'float32') {
        return originalReluGrad.gradFunc(dy, saved, {});
      }
      return { x: () => native('ReluGrad', [dy, x]) };
    },
  });

  const uninstall = () => {
    replaceKernel(tf, originalStep);
    replaceKernel(tf, originalMaxPoolGrad);
    replaceKernel(tf, originalSum);
    replaceKernel(tf, originalFusedConv2D);
    replaceKernel(tf, originalMaxPool);
    tf.registerGradient(originalReluGrad);
    installed.delete(tf);
  };
  installed.set(tf, uninstall);
  return uninstall;
}

function poolAttrs(attrs: TfNode.NamedAttrMap): PoolWindow | undefined {
  const filter = pair(attrs.filterSize);
  const strides = pair(attrs.strides);
  if (!filter || !strides || attrs.dimRoundingMode != null) return undefined;
  if (attrs.pad !== 'valid' && attrs.pad !== 'same') return undefined;
  return {
    ksize: [1, ...filter, 1],
    strides: [1, ...strides, 1],
    padding: attrs.pad === 'valid' ? 'VALID' : 'SAME',
  };
}

/** oneDNN's max pool: the output and the workspace its backward pass needs. */
function oneDnnPool2(ops: NativeOps, input: Tensor, pool: PoolWindow): [Tensor, Tensor] {
  return ops.runMany('_MklNativeMaxPool', maxPoolAttrs(ops, pool, true), [input], 2) as [
    Tensor,
    Tensor,
  ];
}

function oneDnnPoolGrad(ops: NativeOps, dy: Tensor, input: Tensor, pool: PoolWindow): Tensor {
  const [output, workspace] = oneDnnPool2(ops, input, pool);
  try {
    return ops.run('_MklNativeMaxPoolGrad', maxPoolAttrs(ops, pool, true), [
      input,
      output,
      dy,
      workspace,
    ]);
  } finally {
    output.dispose();
    workspace.dispose();
  }
}

/** Whether this libtensorflow has oneDNN's pooling kernels and they agree with Eigen's. */
function supportsOneDnnPool(tf: Tf, ops: NativeOps): boolean {
  try {
    return tf.tidy(() => {
      const x = tf.tensor4d([1, 5, 2, 4, 3, 9, 0, 8, 7], [1, 3, 3, 1]);
      const dy = tf.tensor4d([1, 2, 3, 4], [1, 2, 2, 1]);
      const grad = oneDnnPoolGrad(ops, dy, x, {
        ksize: [1, 2, 2, 1],
        strides: [1, 1, 1, 1],
        padding: 'VALID',
      });
      const expected = [0, 1, 0, 0, 0, 6, 0, 3, 0];
      const [output, workspace] = oneDnnPool2(ops, x, {
        ksize: [1, 2, 2, 1],
        strides: [1, 2, 2, 1],
        padding: 'SAME',
      });
      workspace.dispose();
      const pooled = [5, 9, 8, 7];
      return (
        grad.dataSync().every((v, i) => v === expected[i]) &&
        output.dataSync().every((v, i) => v === pooled[i])
      );
    });
  } catch {
    return false;
  }
}

/** oneDNN convolution attributes, NHWC. */
interface ConvAttrs {
  strides: number[];
  dilations: number[];
  padding: 'VALID' | 'SAME';
}

function convAttrs(attrs: TfNode.NamedAttrMap): ConvAttrs | undefined {
  const strides = pair(attrs.strides);
  const dilations = pair(attrs.dilations ?? 1);
  if (!strides || !dilations || attrs.dimRoundingMode != null) return undefined;
  if (attrs.dataFormat !== undefined && attrs.dataFormat !== 'NHWC') return undefined;
  if (attrs.pad !== 'valid' && attrs.pad !== 'same') return undefined;
  return {
    strides: [1, ...strides, 1],
    dilations: [1, ...dilations, 1],
    padding: attrs.pad === 'valid' ? 'VALID' : 'SAME',
  };
}

/** Convolution and bias add in one oneDNN primitive, as Keras's graph runs them. */
function oneDnnConvWithBias(
  ops: NativeOps,
  x: Tensor,
  filter: Tensor,
  bias: Tensor,
  conv: ConvAttrs,
): Tensor {
  return ops.run(
    '_MklNativeConv2DWithBias',
    [
      ops.type('T'),
      ops.int('strides', conv.strides),
      ops.int('dilations', conv.dilations),
      ops.string('padding', conv.padding),
      ops.string('data_format', 'NHWC'),
      ops.string('_kernel', ONEDNN_KERNEL),
    ],
    [x, filter, bias],
  );
}

/** Whether this libtensorflow has oneDNN's convolution-with-bias kernel and it agrees. */
function supportsOneDnnConv(tf: Tf, ops: NativeOps): boolean {
  try {
    return tf.tidy(() => {
      const x = tf.tensor4d([1, 2, 3, 4, 5, 6, 7, 8, 9], [1, 3, 3, 1]);
      const filter = tf.tensor4d([1, 0, 0, -1, 2, 0, 0, 1], [2, 2, 1, 2]);
      const bias = tf.tensor1d([10, 20]);
      const conv = { strides: [1, 1, 1, 1], dilations: [1, 1, 1, 1], padding: 'VALID' as const };
      const fast = oneDnnConvWithBias(ops, x, filter, bias, conv).dataSync();
      const expected = tf.add(tf.conv2d(x, filter, 1, 'valid'), bias).dataSync();
      return fast.length === expected.length && fast.every((v, i) => v === expected[i]);
    });
  } catch {
    return false;
  }
}

/**
 * Which oneDNN kernels this libtensorflow offers to `installFastKernels` (both true on the
 * x86-64 builds Menagerie sets up); where one is missing its Eigen fallback runs.
 */
export function oneDnnSupport(tf: Tf): { pool: boolean; conv: boolean } {
  const ops = nativeOps(tf);
  return { pool: supportsOneDnnPool(tf, ops), conv: supportsOneDnnConv(tf, ops) };
}

function replaceKernel(tf: Tf, config: TfNode.KernelConfig): void {
  tf.unregisterKernel(config.kernelName, config.backendName);
  tf.registerKernel(config);
}

/**
 * The window size when it equals the stride and padding cannot cut a window (`valid`
 * pads nothing; `same` with a window of 1 or an input divisible by it is `valid` too, but
 * the input shape is not known here, so only `valid` qualifies).
 */
function squareWindow(attrs: TfNode.NamedAttrMap): [number, number] | undefined {
  const filter = pair(attrs.filterSize);
  const strides = pair(attrs.strides);
  if (!filter || !strides || attrs.pad !== 'valid' || attrs.dimRoundingMode != null) {
    return undefined;
  }
  return filter[0] === strides[0] && filter[1] === strides[1] ? filter : undefined;
}

/** dy routed to the input positions equal to their window's maximum (NHWC, no overlap). */
function maskedPoolGrad(
  tf: Tf,
  dy: Tensor,
  input: Tensor,
  output: Tensor,
  [kh, kw]: [number, number],
): Tensor {
  const [n, height, width, c] = input.shape as [number, number, number, number];
  const [, h, w] = output.shape as [number, number, number, number];
  const covered =
    h * kh === height && w * kw === width ? input : tf.slice(input, 0, [n, h * kh, w * kw, c]);
  const windows = tf.reshape(covered, [n, h, kh, w, kw, c]);
  const isMax = tf.equal(windows, tf.reshape(output, [n, h, 1, w, 1, c]));
  const routed = tf.mul(tf.cast(isMax, 'float32'), tf.reshape(dy, [n, h, 1, w, 1, c]));
  const grad = tf.reshape(routed, [n, h * kh, w * kw, c]);
  if (covered === input) return grad;
  return tf.pad(grad, [
    [0, 0],
    [0, height - h * kh],
    [0, width - w * kw],
    [0, 0],
  ]);
}

export { createFastAdam, type FastOptimizerOptions as FastAdamOptions } from './fast-optimizer.js';
