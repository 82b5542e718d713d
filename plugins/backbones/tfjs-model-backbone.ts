import path from 'node:path';
import { pathToFileURL } from 'node:url';
import type * as TfNode from '@tensorflow/tfjs-node';
import { createHash } from 'node:crypto';
import { MenagerieError } from '../../core/errors.js';
import type { InputSpec } from '../../data/input-spec.js';
import {
  definePlugin,
  type BackboneLoadContext,
  type BackbonePlugin,
  type LoadedBackbone,
} from '../../plugin-api/plugin.js';

export interface TfjsModelBackboneOptions {
  /** A tfjs layers model's `model.json`: http(s):// or file:// URL, or a path (a folder means its model.json). */
  location: string;
  /** The layer whose output is the features (a 4-D output is averaged over space); '' picks the last 4-D layer. */
  featureLayer?: string;
  /** The preprocessing the model was trained with (default 224×224, scaled to [-1, 1]). */
  inputSpec?: InputSpec;
}

const MINUS_ONE_TO_ONE_224: InputSpec = {
  size: 224,
  channels: 3,
  fit: 'fill',
  scale: 1 / 127.5,
  offset: -1,
};

/**
 * A backbone from any tfjs layers model at a URL or path (a MobileNet from TF Hub's tfjs
 * exports, a model of your own), cut at a feature layer. The network is touched only when
 * `location` is an http(s) URL. Trainable: fine-tuning unfreezes its top weighted layers.
 *
 * ```ts
 * const backbone = tfjsModelBackbone({ location: '/models/mobilenet_v1_0.25_224', featureLayer: 'conv_pw_13_relu' });
 * ```
 */
export function tfjsModelBackbone(options: TfjsModelBackboneOptions): BackbonePlugin {
  const url = modelUrl(options.location);
  const remote = /^https?:/i.test(url);
  const inputSpec = options.inputSpec ?? MINUS_ONE_TO_ONE_224;
  return definePlugin({
    // The name is part of the feature cache's identity: another cut is another backbone.
    name: `${options.location}#${options.featureLayer || 'last-4d-layer'}`,
    kind: 'backbone',
    description: `tfjs layers model at ${options.location}`,
    inputSpec,
    trainable: true,
    source: { kind: remote ? 'url' : 'path', location: options.location },
    async load({ tf }: BackboneLoadContext): Promise<LoadedBackbone> {
      const unavailable = (why: string, cause?: unknown) =>
        new MenagerieError('MODEL_BASE_UNAVAILABLE', `backbone ${options.location}: ${why}`, {
          cause,
        });
      const [handler] = tf.io.getLoadHandlers(url);
      if (!handler?.load) throw unavailable('no loader for this kind of URL');
      let artifacts: Awaited<ReturnType<typeof handler.load>>;
      try {
        artifacts = await handler.load();
      } catch (error) {
        throw unavailable(String((error as Error).message ?? error).split('\n')[0] ?? '', error);
      }
      const data = artifacts.weightData ?? [];
      const weights = Buffer.concat(
        (Array.isArray(data) ? data : [data]).map((buffer) => Buffer.from(buffer)),
      );
      const model = await tf.loadLayersModel(tf.io.fromMemory(artifacts));
      const shape = model.inputs[0]?.shape ?? [];
      if (
        shape.length !== 4 ||
        shape[3] !== 3 ||
        (shape[1] != null && shape[1] !== inputSpec.size)
      ) {
        model.dispose();
        throw unavailable(
          `expects input ${JSON.stringify(shape)}, it is fed [null,${inputSpec.size},${inputSpec.size},3]`,
        );
      }
      const layer = options.featureLayer
        ? model.layers.find((l) => l.name === options.featureLayer)
        : model.layers.findLast((l) => (l.output as TfNode.SymbolicTensor).shape.length === 4);
      if (!layer) {
        model.dispose();
        const last = model.layers
          .slice(-5)
          .map((l) => l.name)
          .join(', ');
        throw unavailable(
          `has no layer '${options.featureLayer ?? '(4-D)'}' (last layers: ${last})`,
        );
      }
      let features = layer.output as TfNode.SymbolicTensor;
      if (features.shape.length === 4) {
        features = tf.layers
          .globalAveragePooling2d({ name: 'backbone_pool' })
          .apply(features) as TfNode.SymbolicTensor;
      }
      const base = tf.model({ name: 'backbone', inputs: model.inputs, outputs: features });
      const kept = new Set(base.layers);
      for (const l of model.layers) if (!kept.has(l)) l.dispose();
      for (const l of base.layers) l.trainable = false;
      return {
        weightsSha256: createHash('sha256').update(weights).digest('hex'),
        source: { kind: remote ? 'url' : 'path', location: options.location },
        featureSize: features.shape[1] as number,
        features: (xs) => base.predict(xs) as TfNode.Tensor2D,
        // Every weighted layer but the batch norms (which fine-tuning keeps frozen) is a
        // block of its own: "the top N blocks" are the last N such layers.
        trainable: {
          model: base,
          blocks: base.layers
            .filter((l) => l.weights.length > 0 && l.getClassName() !== 'BatchNormalization')
            .map((l) => [l.name]),
        },
        dispose: () => base.dispose(),
      };
    },
  });
}

/** A URL tfjs can load: http(s):// and file:// pass through, a path becomes file://. */
export function modelUrl(location: string): string {
  if (/^(https?|file):\/\//i.test(location)) return location;
  const file = location.endsWith('.json') ? location : path.join(location, 'model.json');
  return pathToFileURL(path.resolve(file)).href;
}
