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
