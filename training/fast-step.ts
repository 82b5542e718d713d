/**
 * Faster training steps on tfjs-node. tfjs runs each op eagerly through TFE_Execute, and a
 * few of its kernels and gradients are composed of many full-size ops where TensorFlow has
 * one. Profiling the reference CNN (batch 32, 64×64) showed three of them taking over half
 * of a step: the ReLU gradient (`Step` built from IsNan+Greater+Fill+ones+Select), the
 * max-pool gradient (Eigen's `MaxPoolGrad`, ~10× its forward pass) and Adam (14 ops and
 * several scalar uploads per variable). This module replaces them; it changes no API, so
 * `model.fit`, `trainOnBatch` and custom loops all benefit.
 *
 * ```ts
 * import { loadTensorflow } from '../data/tensorflow.js';
 * import { createFastAdam, installFastKernels } from './fast-step.js';
 *
 * const tf = await loadTensorflow();
 * installFastKernels(tf); // once per process, before training
 * model.compile({ optimizer: createFastAdam(tf, { learningRate: 1e-3 }), loss: 'categoricalCrossentropy' });
 * ```
 */
import type * as TfNode from '@tensorflow/tfjs-node';

type Tf = typeof import('@tensorflow/tfjs-node');
type Tensor = TfNode.Tensor;
/** tfjs-core's NamedTensor, which tfjs-node does not re-export. */
interface NamedTensor {
  name: string;
  tensor: Tensor;
}

/** The slice of tfjs-node's NodeJSKernelBackend this module calls: one native op by name. */
interface NativeBackend {
  executeSingleOutput(name: string, attrs: NativeAttr[], inputs: Tensor[]): Tensor;
  binding: { TF_ATTR_TYPE: number; TF_FLOAT: number };
}

interface NativeAttr {
  name: string;
  type: number;
  value: number | number[] | string | boolean;
}

const BACKEND = 'tensorflow';
const installed = new WeakMap<Tf, () => void>();

/**
 * Swaps in faster, numerically equivalent kernels and gradients on the native backend;
 * returns a function that restores tfjs's own. Idempotent per `tf` instance.
 *
 * - `Step` (alpha 0, used by every fused `relu` gradient: conv2d and dense layers):
 *   `Sign(Relu(x))`, two native ops instead of five plus two full-size constants.
 * - `Relu` gradient: TensorFlow's single `ReluGrad` op instead of `mul(dy, cast(step(x)))`.
 * - `MaxPoolGrad` where the window equals the stride (every `maxPooling2d({ poolSize })`
 *   with the default strides): routes the gradient through an equality mask of the input
 *   against the broadcast output, element-wise ops instead of Eigen's scalar loop. A
 *   window holding several equal maxima passes the gradient to each of them (TensorFlow
 *   picks the first); after a ReLU the only such ties are zeros, whose gradient the ReLU
 *   drops, so training is unchanged. Other pool shapes keep the native op.
 */
export function installFastKernels(tf: Tf): () => void {
  const existing = installed.get(tf);
  if (existing) return existing;
  if (tf.getBackend() !== BACKEND) {
    throw new Error(`installFastKernels: backend is '${tf.getBackend()}', expected '${BACKEND}'`);
  }
  const backend = tf.backend() as unknown as NativeBackend;
  const float32: NativeAttr = {
    name: 'T',
    type: backend.binding.TF_ATTR_TYPE,
    value: backend.binding.TF_FLOAT,
  };
  const native = (name: string, inputs: Tensor[]) =>
    backend.executeSingleOutput(name, [float32], inputs);

  const originalStep = tf.getKernel('Step', BACKEND);
  const originalMaxPoolGrad = tf.getKernel('MaxPoolGrad', BACKEND);
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
      const window = squareWindow(args.attrs ?? {});
      if (!dy || !input || !output || window === undefined || input.dtype !== 'float32') {
        return originalMaxPoolGrad.kernelFunc(args);
      }
      return tf.tidy(() => maskedPoolGrad(tf, dy, input, output, window));
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
    tf.registerGradient(originalReluGrad);
    installed.delete(tf);
  };
  installed.set(tf, uninstall);
  return uninstall;
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
  const pair = (value: unknown): [number, number] | undefined => {
    if (typeof value === 'number') return [value, value];
    if (Array.isArray(value) && value.length === 2 && value.every((v) => typeof v === 'number')) {
      return [value[0] as number, value[1] as number];
    }
    return undefined;
  };
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

export interface FastAdamOptions {
  learningRate?: number;
  beta1?: number;
  beta2?: number;
  epsilon?: number;
}

/**
 * Adam as Keras 3 computes it (bias correction folded into the step size, epsilon added
 * after the square root), so results match the Python reference rather than tfjs's own
 * variant. Per variable 12 native ops on constants uploaded once, against tfjs's 14 ops
 * and a scalar upload for every number operand.
 *
 * ```ts
 * model.compile({ optimizer: createFastAdam(tf, { learningRate: 1e-3 }), loss: 'categoricalCrossentropy' });
 * ```
 */
export function createFastAdam(tf: Tf, options: FastAdamOptions = {}): TfNode.Optimizer {
  const learningRate = options.learningRate ?? 1e-3;
  const beta1 = options.beta1 ?? 0.9;
  const beta2 = options.beta2 ?? 0.999;
  const epsilon = options.epsilon ?? 1e-7;

  class FastAdam extends tf.Optimizer {
    static get className(): string {
      return 'MenagerieFastAdam';
    }

    private readonly constants = tf.tidy(() => ({
      oneMinusBeta1: tf.keep(tf.scalar(1 - beta1)),
      oneMinusBeta2: tf.keep(tf.scalar(1 - beta2)),
      epsilon: tf.keep(tf.scalar(epsilon)),
    }));
    private readonly moments = new Map<string, { m: TfNode.Variable; v: TfNode.Variable }>();

    override applyGradients(gradients: TfNode.NamedTensorMap | NamedTensor[]): void {
      const named = Array.isArray(gradients)
        ? gradients.map(({ name, tensor }) => [name, tensor] as const)
        : Object.entries(gradients);
      const t = this.iterations + 1;
      const alpha = (learningRate * Math.sqrt(1 - beta2 ** t)) / (1 - beta1 ** t);
      const { oneMinusBeta1, oneMinusBeta2, epsilon: eps } = this.constants;
      tf.tidy(() => {
        const stepSize = tf.scalar(alpha);
        for (const [name, gradient] of named) {
          if (!gradient) continue;
          const variable = tf.engine().registeredVariables[name];
          if (!variable) throw new Error(`FastAdam: no variable named ${name}`);
          const { m, v } = this.momentsOf(name, variable);
          m.assign(tf.add(m, tf.mul(tf.sub(gradient, m), oneMinusBeta1)));
          v.assign(tf.add(v, tf.mul(tf.sub(tf.square(gradient), v), oneMinusBeta2)));
          const update = tf.div(tf.mul(m, stepSize), tf.add(tf.sqrt(v), eps));
          variable.assign(tf.sub(variable, update));
        }
      });
      this.incrementIterations();
    }

    override dispose(): void {
      tf.dispose(Object.values(this.constants));
      for (const { m, v } of this.moments.values()) tf.dispose([m, v]);
      this.moments.clear();
    }

    override async getWeights(): Promise<NamedTensor[]> {
      const moments = [...this.moments.entries()];
      return [
        await this.saveIterations(),
        ...moments.map(([name, { m }]) => ({ name: `${name}/m`, tensor: m })),
        ...moments.map(([name, { v }]) => ({ name: `${name}/v`, tensor: v })),
      ];
    }

    override async setWeights(weights: NamedTensor[]): Promise<void> {
      const rest = await this.extractIterations(weights);
      const half = rest.length / 2;
      for (const [i, { name, tensor }] of rest.slice(0, half).entries()) {
        const second = rest[half + i];
        if (!second) throw new Error(`FastAdam.setWeights: no second moment for ${name}`);
        this.moments.set(name.replace(/\/m$/, ''), {
          m: tf.variable(tensor, false),
          v: tf.variable(second.tensor, false),
        });
      }
    }

    override getConfig(): TfNode.serialization.ConfigDict {
      return { learningRate, beta1, beta2, epsilon };
    }

    private momentsOf(name: string, variable: TfNode.Variable) {
      let moments = this.moments.get(name);
      if (!moments) {
        moments = {
          m: tf.variable(tf.zerosLike(variable), false),
          v: tf.variable(tf.zerosLike(variable), false),
        };
        this.moments.set(name, moments);
      }
      return moments;
    }
  }
  return new FastAdam();
}
