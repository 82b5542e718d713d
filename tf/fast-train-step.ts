/**
 * One training step of a Sequential image classifier as native TensorFlow ops with a
 * hand-written backward pass, where `optimizer.minimize` records ~150 tfjs kernels on a
 * gradient tape and replays their generic gradients. The forward pass is fastPredictor's
 * (convolution with the bias fused, a ReLU before a max pool moved after it), plus
 * dropout; the loss is TensorFlow's fused `SoftmaxCrossEntropyWithLogits` on the last
 * dense layer's logits; the backward pass is one op per step of the chain (`ReluGrad` on
 * the pooled values, `BiasAddGrad` on them too, oneDNN's max-pool gradient fed the forward
 * pass's workspace, the convolution and matmul gradients). Gradients go to the optimizer's
 * `applyGradients`, so any tfjs optimizer works; the fused ones in fast-optimizer.ts are
 * fastest. Models outside the supported layers train through `optimizer.minimize`.
 *
 * Both paths minimise what `model.fit` does: the cross-entropy plus the layers' regularizer
 * losses (`kernelRegularizer`, `biasRegularizer`; their gradients come from a small tape
 * over the regularized weights), and both apply the weights' constraints after each update
 * as Keras does (tfjs's `fit` skips them). The tape path takes the cross-entropy on the
 * logits too when the model ends in a softmax, as the native path does.
 *
 * ```ts
 * import { createFastAdam } from './fast-optimizer.js';
 * import { fastTrainStep } from './fast-train-step.js';
 *
 * const step = fastTrainStep(tf, model, createFastAdam(tf, { learningRate: 1e-3 }));
 * const { loss, correct } = step(xs, ys); // scalars, owned by the caller
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
  type NativeAttr,
  type NativeOps,
} from './native-ops.js';

type Tf = typeof import('@tensorflow/tfjs-node');
type Tensor = TfNode.Tensor;

export interface TrainStepResult {
  /** Mean (weighted) categorical cross-entropy of the batch. */
  loss: TfNode.Scalar;
  /** How many examples of the batch the model classified right (before the update). */
  correct: TfNode.Scalar;
}

/** A training step: one batch of images and one-hot labels in, the weights updated. */
export type TrainStep = ((xs: Tensor, ys: Tensor, exampleWeights?: Tensor) => TrainStepResult) & {
  /** True when the step runs the native forward and backward passes. */
  readonly native: boolean;
};

/** What a layer's forward pass keeps for its backward pass. */
type Backward = (dy: Tensor) => Tensor | undefined;

/** A layer in the chain: forward returns its output and the backward closure. */
type Stage = (x: Tensor, needInputGrad: boolean) => [Tensor, Backward];

interface LayerInfo {
  className: string;
  config: TfNode.serialization.ConfigDict;
  weights: TfNode.LayerVariable[];
}

/**
 * The training step for `model` with `optimizer`: native when every layer is supported
 * (Conv2D with ReLU or no activation, MaxPooling2D, Flatten, Dense, Dropout, Activation
 * ReLU; channels last; the last layer a softmax Dense) and the oneDNN kernels are present,
 * `optimizer.minimize` over `model.apply` otherwise. Dropout masks come from tfjs's
 * unseeded random ops, so lending a seeded `Math.random` reproduces them.
 * `exampleWeights` (one per example) weight the loss, as class weights do.
 */
export function fastTrainStep(
  tf: Tf,
  model: TfNode.LayersModel,
  optimizer: TfNode.Optimizer,
  options: FastTrainStepOptions = {},
): TrainStep {
  const extras = penalties(tf, model);
  const stages = options.native === false ? undefined : nativeStages(tf, model);
  if (!stages) return Object.assign(tapeStep(tf, model, optimizer, extras), { native: false });
  const ops = nativeOps(tf);
  const T = [ops.type('T')];
  return Object.assign(
    (xs: Tensor, ys: Tensor, exampleWeights?: Tensor): TrainStepResult =>
      tf.tidy(() => {
        const grads = new Map<string, Tensor>();
        const backwards: Backward[] = [];
        let h = xs;
        stages.stages.forEach((stage, i) => {
          const [out, backward] = stage(h, i > 0);
          backwards.push(backward);
          h = out;
        });
        const labels = ys.dtype === 'float32' ? ys : tf.cast(ys, 'float32');
        const [perExample, backprop] = ops.runMany(
          'SoftmaxCrossEntropyWithLogits',
          T,
          [h, labels],
          2,
        ) as [Tensor, Tensor];
        const n = xs.shape[0]!;
        const weights = exampleWeights ? tf.reshape(exampleWeights, [n]) : undefined;
        let loss = weights ? tf.mean(tf.mul(perExample, weights)) : tf.mean(perExample);
        let dy: Tensor | undefined = tf.div(
          weights ? tf.mul(backprop, tf.reshape(weights, [n, 1])) : backprop,
          tf.scalar(n),
        );
        const correct = tf.sum(
          tf.cast(tf.equal(tf.argMax(h, -1), tf.argMax(labels, -1)), 'float32'),
        );
        for (let i = backwards.length - 1; i >= 0 && dy; i--) dy = backwards[i]!(dy);
        for (const [variable, grad] of stages.grads) grads.set(variable.name, grad());
        if (extras.regularization) {
          const penalty = extras.regularization();
          loss = tf.add(loss, penalty.value);
          for (const [name, grad] of Object.entries(penalty.grads)) {
            const own = grads.get(name);
            grads.set(name, own ? tf.add(own, grad) : grad);
          }
        }
        optimizer.applyGradients(Object.fromEntries(grads));
        extras.constrain?.();
        return { loss: loss as TfNode.Scalar, correct: correct as TfNode.Scalar };
      }),
    { native: true },
  );
}

export interface FastTrainStepOptions {
  /**
   * False runs the generic `optimizer.minimize` path even for a model the native step
   * supports (to compare the two); by default the native step is used where it can be.
   */
  native?: boolean;
}

/** What both paths add to the cross-entropy: regularizer losses, and constraints. */
interface Penalties {
  /** The summed regularizer losses and their gradients by variable name; absent when none. */
  regularization?: () => { value: TfNode.Scalar; grads: TfNode.NamedTensorMap };
  /** The regularizer losses as one scalar, for a loss taped as a whole; absent when none. */
  regularizationLoss?: () => TfNode.Scalar;
  /** Projects the constrained trainable weights back (after an update); absent when none. */
  constrain?: () => void;
}

/**
 * The layers' regularizer losses for the current weights as one scalar (in the caller's
 * scope), or undefined when no layer has a regularizer. What `model.fit` adds to the loss.
 *
 * ```ts
 * const penalty = regularizerLoss(tf, model);
 * const total = penalty ? tf.add(crossEntropy, penalty()) : crossEntropy;
 * ```
 */
export function regularizerLoss(
  tf: Tf,
  model: TfNode.LayersModel,
): (() => TfNode.Scalar) | undefined {
  const regularized = model.layers.filter((layer) => layer.losses.length > 0);
  if (regularized.length === 0) return undefined;
  // Each layer's own penalties: a Sequential's calculateLosses() finds none (it asks its
  // inner model's nodes), though its fit counts them.
  return () =>
    tf.tidy(
      () => tf.addN(regularized.flatMap((layer) => layer.calculateLosses())) as TfNode.Scalar,
    );
}

function penalties(tf: Tf, model: TfNode.LayersModel): Penalties {
  const result: Penalties = {};
  const regularized = model.layers.filter((layer) => layer.losses.length > 0);
  const regularizationLoss = regularizerLoss(tf, model);
  if (regularizationLoss) {
    // Frozen layers' penalties count in the loss (as in model.fit) but train nothing.
    const variables = regularized
      .flatMap((layer) => layer.trainableWeights)
      .map((w) => w.read() as TfNode.Variable);
    result.regularizationLoss = regularizationLoss;
    result.regularization = () => {
      if (variables.length === 0) return { value: regularizationLoss(), grads: {} };
      return tf.variableGrads(regularizationLoss, variables);
    };
  }
  const constrained = model.trainableWeights.filter((w) => w.constraint != null);
  if (constrained.length > 0) {
    result.constrain = () =>
      tf.tidy(() => {
        for (const w of constrained) {
          const variable = w.read() as TfNode.Variable;
          variable.assign(w.constraint.apply(variable));
        }
      });
  }
  return result;
}

/**
 * The logits of a model that ends in a softmax (a softmax Dense on rank-2 features, or a
 * softmax Activation layer), sharing its layers; undefined for any other model.
 */
function logitsFunction(tf: Tf, model: TfNode.LayersModel): ((xs: Tensor) => Tensor) | undefined {
  const last = model.layers.at(-1);
  if (!last || last.inboundNodes.length !== 1 || model.inputs.length !== 1) return undefined;
  const config = last.getConfig();
  const className = last.getClassName();
  if (config.activation !== 'softmax' || (className !== 'Dense' && className !== 'Activation')) {
    return undefined;
  }
  let body: TfNode.LayersModel;
  try {
    // Shares the layers (and so the weights); never disposed, as that would free them.
    body = tf.model({ inputs: model.inputs, outputs: last.input as TfNode.SymbolicTensor });
  } catch {
    return undefined;
  }
  if (className === 'Activation') {
    return (xs) => body.apply(xs, { training: true }) as Tensor;
  }
  if (body.outputs[0]!.shape.length !== 2) return undefined;
  const [kernel, bias] = last.weights;
  if (!kernel || (config.useBias !== false && !bias)) return undefined;
  return (xs) => {
    const features = body.apply(xs, { training: true }) as Tensor;
    const z = tf.matMul(features as TfNode.Tensor2D, kernel.read() as TfNode.Tensor2D);
    return config.useBias === false ? z : tf.add(z, bias!.read());
  };
}

/**
 * The generic path: `optimizer.minimize` over the model's forward pass. The cross-entropy is
 * taken on the logits (log-softmax) when the model ends in a softmax, as the native step's
 * is; on clipped probabilities otherwise, as Keras's is.
 */
function tapeStep(
  tf: Tf,
  model: TfNode.LayersModel,
  optimizer: TfNode.Optimizer,
  extras: Penalties,
) {
  const logits = logitsFunction(tf, model);
  return (xs: Tensor, ys: Tensor, exampleWeights?: Tensor): TrainStepResult => {
    let correct: TfNode.Scalar | undefined;
    const variables = model.trainableWeights.map((w) => w.read() as TfNode.Variable);
    const labels = ys.dtype === 'float32' ? ys : tf.cast(ys, 'float32');
    const loss = optimizer.minimize(
      () => {
        // argmax of the logits is argmax of the probabilities.
        const out = logits ? logits(xs) : (model.apply(xs, { training: true }) as Tensor);
        correct = tf.keep(
          tf.sum<TfNode.Scalar>(
            tf.cast(tf.equal(tf.argMax(out, -1), tf.argMax(labels, -1)), 'float32'),
          ),
        );
        const logProbs = logits ? tf.logSoftmax(out) : tf.log(tf.clipByValue(out, 1e-7, 1 - 1e-7));
        const perExample = tf.neg(tf.sum(tf.mul(labels, logProbs), -1));
        const weighted = exampleWeights
          ? tf.mul(perExample, tf.reshape(exampleWeights, [-1]))
          : perExample;
        const data = tf.mean(weighted) as TfNode.Scalar;
        return extras.regularizationLoss ? tf.add(data, extras.regularizationLoss()) : data;
      },
      true,
      variables,
    );
    if (labels !== ys) labels.dispose();
    extras.constrain?.();
    return { loss: loss as TfNode.Scalar, correct: correct! };
  };
}

/** Gradient thunks by variable, filled by the backward closures of one step. */
interface Stages {
  stages: Stage[];
  grads: Map<TfNode.Variable, () => Tensor>;
}

function nativeStages(tf: Tf, model: TfNode.LayersModel): Stages | undefined {
  if (tf.getBackend() !== 'tensorflow' || model.inputs.length !== 1) return undefined;
  const support = oneDnnSupport(tf);
  if (!support.pool || !support.conv) return undefined;
  const ops = nativeOps(tf);
  const chained = model.layers.every(
    (layer, i) =>
      i === 0 ||
      (layer.inboundNodes.length === 1 &&
        layer.inboundNodes[0]!.inboundLayers.length === 1 &&
        layer.inboundNodes[0]!.inboundLayers[0] === model.layers[i - 1]),
  );
  if (!chained) return undefined;
  const layers: LayerInfo[] = model.layers
    .map((layer) => ({
      className: layer.getClassName(),
      config: layer.getConfig(),
      weights: layer.weights,
    }))
    .filter((layer) => layer.className !== 'InputLayer');
  const last = layers.at(-1);
  if (last?.className !== 'Dense' || last.config.activation !== 'softmax') return undefined;

  // Each backward closure stores its weight gradients here for the step to collect.
  const pending = new Map<TfNode.Variable, Tensor>();
  const grads = new Map<TfNode.Variable, () => Tensor>();
  const gradOf = (weight: TfNode.LayerVariable | undefined): TfNode.Variable | undefined => {
    if (!weight?.trainable) return undefined;
    const variable = weight.read() as TfNode.Variable;
    grads.set(variable, () => {
      const grad = pending.get(variable);
      if (!grad) throw new Error(`fastTrainStep: no gradient for ${variable.name}`);
      pending.delete(variable);
      return grad;
    });
    return variable;
  };

  const stages: Stage[] = [];
  let rank = model.inputs[0]!.shape.length;
  for (let i = 0; i < layers.length; i++) {
    const layer = layers[i]!;
    const { config } = layer;
    if (config.dataFormat !== undefined && config.dataFormat !== 'channelsLast') return undefined;
    switch (layer.className) {
      case 'Conv2D': {
        const next = layers[i + 1];
        const activation = config.activation;
        if (activation !== 'relu' && activation !== 'linear') return undefined;
        const pool =
          activation === 'relu' && next?.className === 'MaxPooling2D'
            ? poolAttrs(ops, next.config)
            : undefined;
        if (pool === null) return undefined;
        const stage = convStage(tf, ops, layer, activation === 'relu', pool, pending, gradOf);
        if (!stage) return undefined;
        stages.push(stage);
        if (pool) i++;
        break;
      }
      case 'MaxPooling2D': {
        const pool = poolAttrs(ops, config);
        if (!pool) return undefined;
        stages.push((x) => {
          const [p, ws] = ops.runMany('_MklNativeMaxPool', pool, [x], 2) as [Tensor, Tensor];
          return [p, (dy) => ops.run('_MklNativeMaxPoolGrad', pool, [x, p, dy, ws])];
        });
        break;
      }
      case 'Flatten':
        rank = 2;
        stages.push((x) => [tf.reshape(x, [x.shape[0]!, -1]), (dy) => tf.reshape(dy, x.shape)]);
        break;
      case 'Dropout': {
        const rate = Number(config.rate ?? 0);
        if (!(rate >= 0 && rate < 1)) return undefined;
        if (rate === 0) break;
        stages.push((x) => {
          // tfjs's dropout: floor(U[0,1) + keep) / keep, so unseeded draws follow Math.random.
          const keep = 1 - rate;
          const mask = tf.div(tf.floor(tf.add(tf.randomUniform(x.shape), keep)), keep);
          return [tf.mul(x, mask), (dy) => tf.mul(dy, mask)];
        });
        break;
      }
      case 'Dense': {
        if (rank !== 2) return undefined;
        const stage = denseStage(ops, layer, i === layers.length - 1, pending, gradOf);
        if (!stage) return undefined;
        stages.push(stage);
        break;
      }
      case 'Activation':
        if (config.activation === 'linear') break;
        if (config.activation !== 'relu') return undefined;
        stages.push((x) => {
          const y = ops.run('Relu', [ops.type('T')], [x]);
          return [y, (dy) => ops.run('ReluGrad', [ops.type('T')], [dy, y])];
        });
        break;
      default:
        return undefined;
    }
  }
  return { stages, grads };
}

/** oneDNN max-pool attributes with a workspace, or null when the pool is not supported. */
function poolAttrs(ops: NativeOps, config: TfNode.serialization.ConfigDict): NativeAttr[] | null {
  const window = layerPoolWindow(config);
  return window ? maxPoolAttrs(ops, window, true) : null;
}

function convStage(
  tf: Tf,
  ops: NativeOps,
  layer: LayerInfo,
  relu: boolean,
  pool: NativeAttr[] | undefined,
  pending: Map<TfNode.Variable, Tensor>,
  gradOf: (w: TfNode.LayerVariable | undefined) => TfNode.Variable | undefined,
): Stage | undefined {
  const { config, weights } = layer;
  const strides = pair(config.strides);
  const dilations = pair(config.dilationRate ?? 1);
  const pad = padding(config.padding);
  const [kernelWeight, biasWeight] = weights;
  if (!strides || !dilations || !pad || !kernelWeight || !biasWeight) return undefined;
  const kernel = kernelWeight.read();
  const bias = biasWeight.read();
  const kernelVar = gradOf(kernelWeight);
  const biasVar = gradOf(biasWeight);
  const T = [ops.type('T')];
  const conv = [
    ...T,
    ops.int('strides', [1, ...strides, 1]),
    ops.int('dilations', [1, ...dilations, 1]),
    ops.string('padding', pad),
    ops.string('data_format', 'NHWC'),
  ];
  const fused = [...conv, ops.string('_kernel', ONEDNN_KERNEL)];
  const nhwc = [...T, ops.string('data_format', 'NHWC')];
  return (x, needInputGrad) => {
    const z = ops.run('_MklNativeConv2DWithBias', fused, [x, kernel, bias]);
    let out = z;
    let poolGrad: ((dy: Tensor) => Tensor) | undefined;
    if (pool) {
      const [p, ws] = ops.runMany('_MklNativeMaxPool', pool, [z], 2) as [Tensor, Tensor];
      out = p;
      poolGrad = (dy) => ops.run('_MklNativeMaxPoolGrad', pool, [z, p, dy, ws]);
    }
    const y = relu ? ops.run('Relu', T, [out]) : out;
    return [
      y,
      (dy) => {
        let dz = relu ? ops.run('ReluGrad', T, [dy, y]) : dy;
        // The bias gradient sums the pool's gradient before or after routing alike (each
        // pooled value's gradient goes whole to one input), so sum the 4× smaller one.
        if (biasVar) pending.set(biasVar, ops.run('BiasAddGrad', nhwc, [dz]));
        if (poolGrad) dz = poolGrad(dz);
        if (kernelVar) {
          const sizes = tf.tensor1d(kernel.shape, 'int32');
          pending.set(kernelVar, ops.run('Conv2DBackpropFilter', conv, [x, sizes, dz]));
        }
        if (!needInputGrad) return undefined;
        const sizes = tf.tensor1d(x.shape, 'int32');
        return ops.run('Conv2DBackpropInput', conv, [sizes, kernel, dz]);
      },
    ];
  };
}

function denseStage(
  ops: NativeOps,
  layer: LayerInfo,
  isLogits: boolean,
  pending: Map<TfNode.Variable, Tensor>,
  gradOf: (w: TfNode.LayerVariable | undefined) => TfNode.Variable | undefined,
): Stage | undefined {
  const { config, weights } = layer;
  const activation = config.activation;
  if (!isLogits && activation !== 'relu' && activation !== 'linear') return undefined;
  const [kernelWeight, biasWeight] = weights;
  if (!kernelWeight || !biasWeight) return undefined;
  const kernel = kernelWeight.read();
  const bias = biasWeight.read();
  const kernelVar = gradOf(kernelWeight);
  const biasVar = gradOf(biasWeight);
  const T = [ops.type('T')];
  const matMul = (ta: boolean, tb: boolean) => [
    ...T,
    ops.bool('transpose_a', ta),
    ops.bool('transpose_b', tb),
  ];
  const nhwc = [...T, ops.string('data_format', 'NHWC')];
  const relu = !isLogits && activation === 'relu';
  return (x, needInputGrad) => {
    const z = ops.run('BiasAdd', nhwc, [
      ops.run('MatMul', matMul(false, false), [x, kernel]),
      bias,
    ]);
    const y = relu ? ops.run('Relu', T, [z]) : z;
    return [
      y,
      (dy) => {
        const dz = relu ? ops.run('ReluGrad', T, [dy, y]) : dy;
        if (kernelVar) pending.set(kernelVar, ops.run('MatMul', matMul(true, false), [x, dz]));
        if (biasVar) pending.set(biasVar, ops.run('BiasAddGrad', nhwc, [dz]));
        return needInputGrad ? ops.run('MatMul', matMul(false, true), [dz, kernel]) : undefined;
      },
    ];
  };
}
