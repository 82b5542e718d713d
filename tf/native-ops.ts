/**
 * Direct access to TensorFlow ops through tfjs-node's NodeJSKernelBackend: any op the
 * linked libtensorflow registers, by name, with attributes, run eagerly like tfjs's own
 * kernels. The fast kernels and the fast optimizers are built on it.
 *
 * ```ts
 * const ops = nativeOps(tf);
 * const grad = ops.run('BiasAddGrad', [ops.type('T'), ops.string('data_format', 'NHWC')], [dy]);
 * ```
 */
import type * as TfNode from '@tensorflow/tfjs-node';

type Tf = typeof import('@tensorflow/tfjs-node');
type Tensor = TfNode.Tensor;

/** One op attribute in the binding's format. */
export interface NativeAttr {
  name: string;
  type: number;
  value: number | number[] | string | boolean;
}

/** The slice of tfjs-node's NodeJSKernelBackend this module calls. */
interface NodeBackend {
  executeSingleOutput(name: string, attrs: NativeAttr[], inputs: Tensor[]): Tensor;
  executeMultipleOutputs(
    name: string,
    attrs: NativeAttr[],
    inputs: Tensor[],
    outputs: number,
  ): Tensor[];
  binding: {
    TF_ATTR_TYPE: number;
    TF_ATTR_INT: number;
    TF_ATTR_BOOL: number;
    TF_ATTR_STRING: number;
    TF_ATTR_SHAPE: number;
    TF_FLOAT: number;
  };
}

export interface NativeOps {
  /** Runs `name` and returns its first output. */
  run(name: string, attrs: NativeAttr[], inputs: Tensor[]): Tensor;
  /** Runs `name` and returns its `outputs` outputs (none for stateful ops like `AssignVariableOp`). */
  runMany(name: string, attrs: NativeAttr[], inputs: Tensor[], outputs: number): Tensor[];
  /** A type attribute set to float32 (`T` for most ops, `dtype` for variables). */
  type(name: string): NativeAttr;
  int(name: string, value: number | number[]): NativeAttr;
  bool(name: string, value: boolean): NativeAttr;
  string(name: string, value: string): NativeAttr;
  shape(name: string, value: number[]): NativeAttr;
}

const BACKEND = 'tensorflow';

/** Native op access on the `tensorflow` backend; throws on any other backend. */
export function nativeOps(tf: Tf): NativeOps {
  if (tf.getBackend() !== BACKEND) {
    throw new Error(`native ops: backend is '${tf.getBackend()}', expected '${BACKEND}'`);
  }
  const backend = tf.backend() as unknown as NodeBackend;
  const { binding } = backend;
  return {
    run: (name, attrs, inputs) => backend.executeSingleOutput(name, attrs, inputs),
    runMany: (name, attrs, inputs, outputs) =>
      backend.executeMultipleOutputs(name, attrs, inputs, outputs),
    type: (name) => ({ name, type: binding.TF_ATTR_TYPE, value: binding.TF_FLOAT }),
    int: (name, value) => ({ name, type: binding.TF_ATTR_INT, value }),
    bool: (name, value) => ({ name, type: binding.TF_ATTR_BOOL, value }),
    string: (name, value) => ({ name, type: binding.TF_ATTR_STRING, value }),
    shape: (name, value) => ({ name, type: binding.TF_ATTR_SHAPE, value }),
  };
}

/** The label oneDNN's kernels are registered under (eager mode's rewrite sets it too). */
export const ONEDNN_KERNEL = 'MklNameChangeOp';

/** `n` or `[h, w]` from a layer config or kernel attributes as a pair; undefined otherwise. */
export function pair(value: unknown): [number, number] | undefined {
  if (typeof value === 'number') return [value, value];
  if (Array.isArray(value) && value.length === 2 && value.every((v) => typeof v === 'number')) {
    return [value[0] as number, value[1] as number];
  }
  return undefined;
}

/** Keras/tfjs padding (`valid`, `same`) as TensorFlow names it; undefined for others. */
export function padding(value: unknown): 'VALID' | 'SAME' | undefined {
  return value === 'valid' ? 'VALID' : value === 'same' ? 'SAME' : undefined;
}

/** A max-pool window in NHWC: [1, h, w, 1] size and strides, VALID or SAME. */
export interface PoolWindow {
  ksize: number[];
  strides: number[];
  padding: 'VALID' | 'SAME';
}

/** The window of a MaxPooling2D layer's config, or undefined when it is not expressible. */
export function layerPoolWindow(config: Record<string, unknown>): PoolWindow | undefined {
  const size = pair(config.poolSize);
  const strides = pair(config.strides ?? config.poolSize);
  const pad = padding(config.padding);
  if (!size || !strides || !pad) return undefined;
  return { ksize: [1, ...size, 1], strides: [1, ...strides, 1], padding: pad };
}

/**
 * Attributes of `MaxPool` for `window`; with `workspace` given, of oneDNN's
 * `_MklNativeMaxPool`/`_MklNativeMaxPoolGrad`, which output (or take) a workspace when it
 * is enabled.
 */
export function maxPoolAttrs(
  ops: NativeOps,
  window: PoolWindow,
  workspace?: boolean,
): NativeAttr[] {
  const attrs = [
    ops.type('T'),
    ops.int('ksize', window.ksize),
    ops.int('strides', window.strides),
    ops.string('padding', window.padding),
    ops.string('data_format', 'NHWC'),
  ];
  if (workspace === undefined) return attrs;
  return [...attrs, ops.bool('workspace_enabled', workspace), ops.string('_kernel', ONEDNN_KERNEL)];
}
