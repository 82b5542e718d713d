import os from 'node:os';
import path from 'node:path';
import type { InputSpec } from '../../data/input-spec.js';
import { loadTensorflow } from '../../tf/tensorflow.js';
import { builtinPlugins } from '../../plugins/builtins.js';
import { createPluginRegistry } from '../../plugin-api/plugin-registry.js';
import { registerModelArtifact } from '../../registry/register-model.js';
import type { ModelRegistry, ModelVersion } from '../../registry/model-registry.js';
import { createBackboneLoader } from '../../training/backbone-loader.js';
import { saveModelArtifact } from '../../training/model-artifact.js';
import { makeImage } from '../helpers/fixtures.js';

/** Small enough that a forward pass costs well under a millisecond; 'cover' so fit matters. */
export const TINY_SPEC: InputSpec = {
  size: 16,
  channels: 3,
  fit: 'cover',
  scale: 1 / 127.5,
  offset: -1,
};
export const TINY_LABELS = ['cat', 'dog', 'wild'];

/** The built-in plugins, as a workspace without a config file has them. */
export const PLUGINS = createPluginRegistry(builtinPlugins());

/** What loading a version takes: the plugins, and backbones for transfer models. */
export const LOADERS = {
  plugins: PLUGINS,
  backbones: createBackboneLoader({
    plugins: PLUGINS,
    cacheDir: path.join(os.tmpdir(), 'menagerie-test-backbones'),
  }),
};

/**
 * Saves an untrained, seeded classifier (flatten → dense 'embedding' → softmax) as a real
 * model artifact, so tests load it exactly as serving loads a trained one.
 */
export async function saveTinyModel(
  dir: string,
  options: { seed: number; labels?: string[]; spec?: InputSpec; embeddingSize?: number },
): Promise<string> {
  const tf = await loadTensorflow();
  const spec = options.spec ?? TINY_SPEC;
  const labels = options.labels ?? TINY_LABELS;
  const model = tf.sequential();
  model.add(tf.layers.flatten({ inputShape: [spec.size, spec.size, 3] }));
  model.add(
    tf.layers.dense({
      units: options.embeddingSize ?? 24,
      activation: 'tanh',
      name: 'embedding',
      kernelInitializer: tf.initializers.glorotUniform({ seed: options.seed }),
    }),
  );
  model.add(
    tf.layers.dense({
      units: labels.length,
      activation: 'softmax',
      kernelInitializer: tf.initializers.glorotUniform({ seed: options.seed + 1 }),
    }),
  );
  await saveModelArtifact(dir, model, {
    plugin: 'menagerie:cnn',
    pluginVersion: '1.0.0',
    labels,
    inputSpec: spec,
    hyperparameters: {},
    embeddingLayer: 'embedding',
    epoch: 0,
    metrics: {},
  });
  model.dispose();
  return dir;
}

/** Saves a tiny model under `root/v<seed>` and registers it as the next version of `name`. */
export async function registerTinyVersion(
  registry: ModelRegistry,
  root: string,
  name: string,
  seed: number,
): Promise<ModelVersion> {
  const dir = await saveTinyModel(path.join(root, `model-${name}-${seed}`), { seed });
  return registerModelArtifact(registry, PLUGINS, { name, dir });
}

/** Distinct JPEGs, 40×24 so that the stored 'cover' fit crops differently from 'fill'. */
export function testImages(count: number, first = 1): Promise<Buffer[]> {
  return Promise.all(
    Array.from({ length: count }, (_, i) => makeImage(first + i, { width: 40, height: 24 })),
  );
}
