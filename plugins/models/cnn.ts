import type * as TfNode from '@tensorflow/tfjs-node';
import type { InputSpec } from '../../data/input-spec.js';
import type { HyperParameters } from '../../plugin-api/hyperparameters.js';
import { definePlugin, type ModelBuildContext, type ModelPlugin } from '../../plugin-api/plugin.js';

/** The cnn's hyperparameter values, read from a HyperParameters. */
export interface CnnHyperparameters {
  inputSize: number;
  conv1Filters: number;
  conv1Kernel: number;
  conv2Filters: number;
  conv2Kernel: number;
  extraConvBlocks: number;
  batchNorm: boolean;
  denseUnits: number;
  dropout: number;
  learningRate: number;
  optimizer: string;
}

/**
 * Declares the space (KerasTuner's reference search plus depth, batch norm and input size)
 * and returns the current values. Defaults are the reference baseline.
 */
export function cnnHyperparameters(hp: HyperParameters): CnnHyperparameters {
  return {
    inputSize: hp.choice('input_size', [64, 96, 128], { default: 64 }),
    conv1Filters: hp.int('conv1_filters', 32, 128, { step: 16, default: 32 }),
    conv1Kernel: hp.choice('conv1_kernel', [3, 5], { default: 3 }),
    conv2Filters: hp.int('conv2_filters', 64, 256, { step: 32, default: 64 }),
    conv2Kernel: hp.choice('conv2_kernel', [3, 5], { default: 3 }),
    extraConvBlocks: hp.int('extra_conv_blocks', 0, 2, { default: 0 }),
    batchNorm: hp.boolean('batch_norm', { default: false }),
    denseUnits: hp.int('dense_units', 64, 512, { step: 64, default: 128 }),
    dropout: hp.float('dropout', 0.1, 0.5, { default: 0.5 }),
    learningRate: hp.float('learning_rate', 1e-4, 1e-2, { sampling: 'log', default: 1e-3 }),
    optimizer: hp.choice('optimizer', ['adam', 'sgd', 'rmsprop'], { default: 'adam' }),
  };
}

/** Name of the cnn's embedding layer: the dense layer before dropout and softmax. */
export const CNN_EMBEDDING_LAYER = 'embedding';

/**
 * The reference baseline as a Keras-style Sequential: Conv32-Pool-Conv64-Pool-Flatten-
 * Dense128(relu, the embedding)-Dropout0.5-Dense(n, softmax) on 64×64 inputs scaled to
 * [0, 1], trained with Adam 1e-3. Its space widens filters, kernels, depth, dense width,
 * dropout, batch norm, input size, optimizer and learning rate.
 *
 * ```ts
 * import { cnnModel } from './plugins/models/cnn.js';
 * import { HyperParameters } from './plugin-api/hyperparameters.js';
 *
 * const cnn = cnnModel();
 * const hp = new HyperParameters({ conv1_filters: 64 });
 * cnn.space(hp);
 * const model = cnn.build(hp, { tf, labels: ['cat', 'dog', 'wild'], input: cnn.inputSpec(hp) });
 * ```
 */
export function cnnModel(): ModelPlugin {
  return definePlugin({
    name: 'menagerie:cnn',
    kind: 'model',
    version: '1.0.0',
    description: 'Keras-style Sequential CNN (the reference baseline), trained from scratch',
    space: (hp) => void cnnHyperparameters(hp),
    inputSpec: (hp): InputSpec => ({
      size: cnnHyperparameters(hp).inputSize,
      channels: 3,
      fit: 'fill',
      scale: 1 / 255,
      offset: 0,
      decoder: 'tensorflow',
    }),
    build: (hp, context) => buildCnn(cnnHyperparameters(hp), context),
    embeddingLayer: CNN_EMBEDDING_LAYER,
  });
}

function buildCnn(v: CnnHyperparameters, { tf, labels, input, seed }: ModelBuildContext) {
  let layerIndex = 0;
  // Each layer gets its own seed; the same training seed then gives the same weights.
  const init = () =>
    seed === undefined
      ? {}
      : { kernelInitializer: tf.initializers.glorotUniform({ seed: seed + layerIndex++ }) };
  const model = tf.sequential({ name: 'menagerie_cnn' });
  const blocks: [number, number][] = [
    [v.conv1Filters, v.conv1Kernel],
    [v.conv2Filters, v.conv2Kernel],
    ...Array.from({ length: v.extraConvBlocks }, (): [number, number] => [v.conv2Filters, 3]),
  ];
  blocks.forEach(([filters, kernelSize], i) => {
    const name = `conv${i + 1}`;
    const first: Partial<Parameters<typeof tf.layers.conv2d>[0]> =
      i === 0 ? { inputShape: [input.size, input.size, input.channels] } : {};
    model.add(
      tf.layers.conv2d({
        ...first,
        name,
        filters,
        kernelSize,
        activation: v.batchNorm ? 'linear' : 'relu',
        useBias: !v.batchNorm,
        ...init(),
      }),
    );
    if (v.batchNorm) {
      model.add(tf.layers.batchNormalization({ name: `${name}_bn` }));
      model.add(tf.layers.activation({ name: `${name}_relu`, activation: 'relu' }));
    }
    model.add(tf.layers.maxPooling2d({ name: `pool${i + 1}`, poolSize: 2 }));
  });
  model.add(tf.layers.flatten({ name: 'flatten' }));
  model.add(
    tf.layers.dense({
      name: CNN_EMBEDDING_LAYER,
      units: v.denseUnits,
      activation: 'relu',
      ...init(),
    }),
  );
  model.add(tf.layers.dropout({ name: 'dropout', rate: v.dropout }));
  model.add(
    tf.layers.dense({
      name: 'predictions',
      units: labels.length,
      activation: 'softmax',
      ...init(),
    }),
  );
  return model satisfies TfNode.LayersModel;
}
