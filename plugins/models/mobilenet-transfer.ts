import path from 'node:path';
import { pathToFileURL } from 'node:url';
import type * as TfNode from '@tensorflow/tfjs-node';
import { MenagerieError } from '../../core/errors.js';
import type { InputSpec } from '../../data/input-spec.js';
import type { HyperParameters } from '../../plugin-api/hyperparameters.js';
import { definePlugin, type ModelBuildContext, type ModelPlugin } from '../../plugin-api/plugin.js';

type Tf = ModelBuildContext['tf'];
type ModelArtifacts = Awaited<
  ReturnType<NonNullable<ReturnType<Tf['io']['getLoadHandlers']>[number]['load']>>
>;

/** Google's tfjs-layers MobileNet v1 (α 0.25, 224×224), the default base. */
export const DEFAULT_MOBILENET_URL =
  'https://storage.googleapis.com/tfjs-models/tfjs/mobilenet_v1_0.25_224/model.json';

export interface MobilenetTransferOptions {
  /**
   * The base's `model.json`: an http(s):// or file:// URL, or a local path (a folder means
   * its `model.json`). Recorded as the Fixed hyperparameter `base_model`.
   */
  baseModel?: string;
  /**
   * Layer of the base whose output is the features (`feature_layer`); a 4-D output is
   * global-average-pooled. Default `conv_pw_13_relu`, MobileNet v1's last block.
   */
  featureLayer?: string;
  /** Input side the base expects (`input_size`); default 224. */
  inputSize?: number;
  /** Plugin name, to register several bases side by side; default `menagerie:mobilenet-transfer`. */
  name?: string;
}

/** The head's layers; every other layer belongs to the base. */
const HEAD = {
  pool: 'head_pool',
  embedding: 'head_embedding',
  dropout: 'head_dropout',
  predictions: 'head_predictions',
} as const;

interface TransferHyperparameters {
  baseModel: string;
  featureLayer: string;
  inputSize: number;
  headUnits: number;
  dropout: number;
  fineTune: boolean;
  fineTuneLayers: number;
  fineTuneAfter: number;
}

function transferHyperparameters(
  hp: HyperParameters,
  options: Required<Omit<MobilenetTransferOptions, 'name'>>,
): TransferHyperparameters {
  const values = {
    baseModel: hp.fixed('base_model', options.baseModel),
    featureLayer: hp.fixed('feature_layer', options.featureLayer),
    inputSize: hp.fixed('input_size', options.inputSize),
    headUnits: hp.int('head_units', 64, 512, { step: 64, default: 128 }),
    dropout: hp.float('dropout', 0.1, 0.5, { default: 0.2 }),
    fineTune: hp.boolean('fine_tune', { default: false }),
  };
  hp.float('learning_rate', 1e-4, 1e-2, { sampling: 'log', default: 1e-3 });
  hp.choice('optimizer', ['adam', 'sgd', 'rmsprop'], { default: 'adam' });
  const fineTune = hp.conditionalScope('fine_tune', [true], () => ({
    layers: hp.int('fine_tune_layers', 1, 50, { default: 10 }),
    after: hp.int('fine_tune_after', 1, 20, { default: 3 }),
  }));
  return {
    ...values,
    fineTuneLayers: fineTune?.layers ?? 0,
    fineTuneAfter: fineTune?.after ?? Number.POSITIVE_INFINITY,
  };
}

/**
 * Transfer learning on a tfjs-layers MobileNet: the base is loaded from a URL or a path,
 * frozen, and cut at `featureLayer`; a head (global average pool, dense `head_embedding`,
 * dropout, softmax) is trained on top. With `fine_tune`, the top `fine_tune_layers`
 * weighted base layers (batch norms excepted, as Keras advises) are unfrozen from epoch
 * `fine_tune_after`. Inputs are scaled to [-1, 1] as MobileNet expects.
 * The base is fetched once per plugin instance and rebuilt from memory for every model.
 *
 * ```ts
 * import { mobilenetTransfer } from './plugins/models/mobilenet-transfer.js';
 *
 * const plugin = mobilenetTransfer({ baseModel: '/models/mobilenet_v1_0.25_224' });
 * ```
 */
export function mobilenetTransfer(options: MobilenetTransferOptions = {}): ModelPlugin {
  const resolved = {
    baseModel: options.baseModel ?? DEFAULT_MOBILENET_URL,
    featureLayer: options.featureLayer ?? 'conv_pw_13_relu',
    inputSize: options.inputSize ?? 224,
  };
  const bases = new Map<string, Promise<ModelArtifacts>>();
  const read = (hp: HyperParameters) => transferHyperparameters(hp, resolved);
  return definePlugin({
    name: options.name ?? 'menagerie:mobilenet-transfer',
    kind: 'model',
    version: '1.0.0',
    description: 'Frozen tfjs-layers MobileNet base with a trainable head; optional fine-tuning',
    space: (hp) => void read(hp),
    inputSpec: (hp): InputSpec => ({
      size: read(hp).inputSize,
      channels: 3,
      fit: 'fill',
      scale: 1 / 127.5,
      offset: -1,
    }),
    async build(hp, context) {
      const v = read(hp);
      const url = baseModelUrl(v.baseModel);
      let artifacts = bases.get(url);
      if (!artifacts) {
        artifacts = fetchArtifacts(context.tf, url);
        bases.set(url, artifacts);
        artifacts.catch(() => bases.delete(url));
      }
      return buildTransfer(v, context, await artifacts);
    },
    embeddingLayer: HEAD.embedding,
    onEpochStart(model, epoch, hp) {
      const v = read(hp);
      if (!v.fineTune || epoch < v.fineTuneAfter) return false;
      const base = model.layers.filter(
        (l) =>
          !Object.values<string>(HEAD).includes(l.name) &&
          l.getClassName() !== 'BatchNormalization' &&
          l.weights.length > 0,
      );
      const top = base.slice(-v.fineTuneLayers).filter((l) => !l.trainable);
      for (const layer of top) layer.trainable = true;
      return top.length > 0;
    },
  });
}

/** A URL tfjs can load: http(s):// and file:// pass through, a path becomes file://. */
export function baseModelUrl(location: string): string {
  if (/^(https?|file):\/\//i.test(location)) return location;
  const file = location.endsWith('.json') ? location : path.join(location, 'model.json');
  return pathToFileURL(path.resolve(file)).href;
}

async function fetchArtifacts(tf: Tf, url: string): Promise<ModelArtifacts> {
  const unavailable = (why: string, cause?: unknown) =>
    new MenagerieError('MODEL_BASE_UNAVAILABLE', `base model ${url}: ${why}`, { cause });
  const [handler] = tf.io.getLoadHandlers(url);
  if (!handler?.load) throw unavailable('no loader for this kind of URL');
  try {
    return await handler.load();
  } catch (error) {
    throw unavailable(
      String(error instanceof Error ? error.message : error).split('\n')[0] ?? '',
      error,
    );
  }
}

async function buildTransfer(
  v: TransferHyperparameters,
  { tf, labels, input, seed }: ModelBuildContext,
  artifacts: ModelArtifacts,
): Promise<TfNode.LayersModel> {
  const base = await tf.loadLayersModel(tf.io.fromMemory(artifacts));
  const fail = (why: string) => {
    base.dispose();
    return new MenagerieError('MODEL_BASE_UNAVAILABLE', `base model ${v.baseModel}: ${why}`);
  };
  const shape = base.inputs[0]?.shape ?? [];
  const side = shape[1];
  if (shape.length !== 4 || shape[3] !== input.channels || (side != null && side !== input.size)) {
    throw fail(
      `expects input ${JSON.stringify(shape)}, the plugin feeds [null,${input.size},${input.size},3]`,
    );
  }
  const featureLayer = base.layers.find((l) => l.name === v.featureLayer);
  if (!featureLayer) {
    throw fail(
      `has no layer '${v.featureLayer}' (last layers: ${base.layers
        .slice(-5)
        .map((l) => l.name)
        .join(', ')})`,
    );
  }
  for (const layer of base.layers) layer.trainable = false;
  const init = (offset: number) =>
    seed === undefined
      ? {}
      : { kernelInitializer: tf.initializers.glorotUniform({ seed: seed + offset }) };
  let features = featureLayer.output as TfNode.SymbolicTensor;
  if (features.shape.length === 4) {
    features = tf.layers
      .globalAveragePooling2d({ name: HEAD.pool })
      .apply(features) as TfNode.SymbolicTensor;
  }
  const embedding = tf.layers
    .dense({ name: HEAD.embedding, units: v.headUnits, activation: 'relu', ...init(0) })
    .apply(features);
  const dropped = tf.layers.dropout({ name: HEAD.dropout, rate: v.dropout }).apply(embedding);
  const predictions = tf.layers
    .dense({ name: HEAD.predictions, units: labels.length, activation: 'softmax', ...init(1) })
    .apply(dropped) as TfNode.SymbolicTensor;
  const model = tf.model({ name: 'mobilenet_transfer', inputs: base.inputs, outputs: predictions });
  // Layers past the cut (the base's own classifier) are not in the new model: free them.
  const kept = new Set(model.layers);
  for (const layer of base.layers) if (!kept.has(layer)) layer.dispose();
  return model;
}
