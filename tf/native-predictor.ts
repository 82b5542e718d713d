/**
 * Inference for Sequential image classifiers as a short list of native TensorFlow ops,
 * where `model.predict` goes through tfjs-layers' execution (a scope, checks and a kernel
 * dispatch per layer, a separate pass for each activation). Conv layers run oneDNN's
 * convolution with the bias fused; a ReLU right before a max pool moves after it (the two
 * commute: max and ReLU are both monotone), so it touches a quarter of the values; dropout
 * disappears. Models with layers outside the supported set run `model.predict` instead.
 *
 * ```ts
 * import { fastPredictor } from './native-predictor.js';
 *
 * const predict = fastPredictor(tf, model); // once per loaded model
 * const [probabilities] = tidyRead(tf, () => [predict(batch)]); // per batch (tf/tidy-read.ts)
 * ```
 */
import type * as TfNode from '@tensorflow/tfjs-node';
import { oneDnnSupport } from './fast-kernels.js';
import {
  layerPoolWindow,
  maxPoolAttrs,
  nativeOps,
  ONEDNN_KERNEL,
  padding,
  pair,
  type NativeOps,
} from './native-ops.js';

type Tf = typeof import('@tensorflow/tfjs-node');
type Tensor = TfNode.Tensor;
type Step = (x: Tensor) => Tensor;

/** A predictor: one batch in (NHWC, float32), the model's output out, in the caller's scope. */
export type Predictor = ((x: Tensor) => Tensor) & {
  /** True when the model runs through native ops, false when it falls back to `predict`. */
  readonly native: boolean;
};

/**
 * A predictor for `model`: native ops when every layer is supported (Conv2D with ReLU or
 * no activation, MaxPooling2D, Flatten, Dense with ReLU, softmax or none, Dropout,
 * Activation; channels last), `model.predict` otherwise. Weights are read at each call,
 * so the predictor follows `setWeights`.
 */
export function fastPredictor(tf: Tf, model: TfNode.LayersModel): Predictor {
  const steps = nativeSteps(tf, model)?.steps;
  if (!steps) {
    return Object.assign((x: Tensor) => model.predict(x) as Tensor, { native: false });
  }
  return Object.assign((x: Tensor) => tf.tidy(() => steps.reduce((h, step) => step(h), x)), {
    native: true,
  });
}

/**
 * Native ops for `model` that also give the outputs of the named layers (a classifier's
 * embedding layer, say): `[model output, ...those layers' outputs]`, in the caller's scope.
 * Undefined when a layer is unsupported or a named layer's output is fused away (a ReLU
 * convolution followed by a pool): the caller runs the model as it would have.
 *
 * ```ts
 * const run = tappedPredictor(tf, model, ['embedding']);
 * const [probabilities, embedding] = tidyRead(tf, () => run!(batch));
 * ```
 */
export function tappedPredictor(
  tf: Tf,
  model: TfNode.LayersModel,
  layerNames: readonly string[],
): ((x: Tensor) => Tensor[]) | undefined {
  const native = nativeSteps(tf, model);
  if (!native) return undefined;
  const { steps, ends } = native;
  const taps = layerNames.map((name) => ends.get(name));
  if (!taps.every((t): t is number => t !== undefined)) return undefined;
  return (x) => {
    const outputs = new Map<number, Tensor>([[0, x]]);
    let h = x;
    steps.forEach((step, i) => {
      h = step(h);
      outputs.set(i + 1, h);
    });
    return [h, ...taps.map((t) => outputs.get(t)!)];
  };
}

interface LayerInfo {
  name: string;
  className: string;
  config: TfNode.serialization.ConfigDict;
  weights: TfNode.LayerVariable[];
}

/**
 * The steps, and for each layer the number of steps after which its output is the running
 * value (absent for a layer whose output is fused away).
 */
function nativeSteps(
  tf: Tf,
  model: TfNode.LayersModel,
): { steps: Step[]; ends: Map<string, number> } | undefined {
  if (model.inputs.length !== 1 || model.outputs.length !== 1) return undefined;
  if (tf.getBackend() !== 'tensorflow') return undefined;
  const support = oneDnnSupport(tf);
  const ops = nativeOps(tf);
  const layers: LayerInfo[] = model.layers
    .map((layer) => ({
      name: layer.name,
      className: layer.getClassName(),
      config: layer.getConfig(),
      weights: layer.weights,
    }))
    .filter((layer) => layer.className !== 'InputLayer');
  // Sequential only: each layer's single input is the previous layer's output.
  const chained = model.layers.every(
    (layer, i) =>
      i === 0 ||
      (layer.inboundNodes.length === 1 &&
        layer.inboundNodes[0]!.inboundLayers.length === 1 &&
        layer.inboundNodes[0]!.inboundLayers[0] === model.layers[i - 1]),
  );
  if (!chained) return undefined;

  const steps: Step[] = [];
  const ends = new Map<string, number>();
  // Dense layers on rank-2 inputs only (tfjs's dense also maps over leading axes).
  let rank = model.inputs[0]!.shape.length;
  for (let i = 0; i < layers.length; i++) {
    const layer = layers[i]!;
    const next = layers[i + 1];
    const { config } = layer;
    if (config.dataFormat !== undefined && config.dataFormat !== 'channelsLast') return undefined;
    switch (layer.className) {
      case 'Conv2D': {
        const step = convStep(ops, support.conv, layer);
        if (!step) return undefined;
        const activation = config.activation;
        if (activation !== 'relu' && activation !== 'linear') return undefined;
        steps.push(step);
        if (activation === 'relu') {
          // ReLU after the pool when a pool follows: max(relu(x)) = relu(max(x)).
          if (next?.className === 'MaxPooling2D') {
            const pool = poolStep(ops, support.pool, next);
            if (!pool) return undefined;
            steps.push(pool);
            i++;
            steps.push((x) => ops.run('Relu', [ops.type('T')], [x]));
            ends.set(next.name, steps.length);
            continue; // this layer's own output never exists
          }
          steps.push((x) => ops.run('Relu', [ops.type('T')], [x]));
        }
        break;
      }
      case 'MaxPooling2D': {
        const pool = poolStep(ops, support.pool, layer);
        if (!pool) return undefined;
        steps.push(pool);
        break;
      }
      case 'Flatten':
        steps.push((x) => tf.reshape(x, [x.shape[0]!, -1]));
        rank = 2;
        break;
      case 'Dropout':
        break;
      case 'Dense': {
        const step = rank === 2 ? denseStep(ops, layer) : undefined;
        if (!step) return undefined;
        steps.push(step);
        break;
      }
      case 'Activation': {
        const activation = activationStep(ops, config.activation);
        if (!activation) return undefined;
        if (activation !== 'identity') steps.push(activation);
        break;
      }
      default:
        return undefined;
    }
    ends.set(layer.name, steps.length);
  }
  return { steps, ends };
}

function convStep(ops: NativeOps, oneDnn: boolean, layer: LayerInfo): Step | undefined {
  const { config, weights } = layer;
  const strides = pair(config.strides);
  const dilations = pair(config.dilationRate ?? 1);
  const pad = padding(config.padding);
  const [kernel, bias] = weights;
  if (!strides || !dilations || !pad || !kernel) return undefined;
  if (config.useBias !== false && !bias) return undefined;
  const attrs = [
    ops.type('T'),
    ops.int('strides', [1, ...strides, 1]),
    ops.int('dilations', [1, ...dilations, 1]),
    ops.string('padding', pad),
    ops.string('data_format', 'NHWC'),
  ];
  if (!bias) return (x) => ops.run('Conv2D', attrs, [x, kernel.read()]);
  if (oneDnn) {
    const fused = [...attrs, ops.string('_kernel', ONEDNN_KERNEL)];
    return (x) => ops.run('_MklNativeConv2DWithBias', fused, [x, kernel.read(), bias.read()]);
  }
  const biasAttrs = [ops.type('T'), ops.string('data_format', 'NHWC')];
  return (x) => {
    const conv = ops.run('Conv2D', attrs, [x, kernel.read()]);
    return ops.run('BiasAdd', biasAttrs, [conv, bias.read()]);
  };
}

function poolStep(ops: NativeOps, oneDnn: boolean, layer: LayerInfo): Step | undefined {
  const window = layerPoolWindow(layer.config);
  if (!window) return undefined;
  if (!oneDnn) {
    const attrs = maxPoolAttrs(ops, window);
    return (x) => ops.run('MaxPool', attrs, [x]);
  }
  const mkl = maxPoolAttrs(ops, window, false);
  return (x) => {
    const [output, workspace] = ops.runMany('_MklNativeMaxPool', mkl, [x], 2) as [Tensor, Tensor];
    workspace.dispose();
    return output;
  };
}

function denseStep(ops: NativeOps, layer: LayerInfo): Step | undefined {
  const { config, weights } = layer;
  const [kernel, bias] = weights;
  if (!kernel || (config.useBias !== false && !bias)) return undefined;
  const activation = activationStep(ops, config.activation);
  if (!activation) return undefined;
  const matMul = [ops.type('T'), ops.bool('transpose_a', false), ops.bool('transpose_b', false)];
  const biasAttrs = [ops.type('T'), ops.string('data_format', 'NHWC')];
  return (x) => {
    let y = ops.run('MatMul', matMul, [x, kernel.read()]);
    if (bias) y = ops.run('BiasAdd', biasAttrs, [y, bias.read()]);
    return activation === 'identity' ? y : activation(y);
  };
}

function activationStep(ops: NativeOps, name: unknown): Step | 'identity' | undefined {
  switch (name) {
    case 'linear':
    case undefined:
      return 'identity';
    case 'relu':
      return (x) => ops.run('Relu', [ops.type('T')], [x]);
    case 'softmax':
      return (x) => ops.run('Softmax', [ops.type('T')], [x]);
    default:
      return undefined;
  }
}
