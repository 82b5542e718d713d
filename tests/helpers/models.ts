import { loadTensorflow } from '../../tf/tensorflow.js';
import type { InputSpec } from '../../data/input-spec.js';
import type { ModelArtifactManifest } from '../../plugin-api/plugin.js';
import { saveModelArtifact } from '../../training/model-artifact.js';

export const TINY_SPEC: InputSpec = {
  size: 16,
  channels: 3,
  fit: 'fill',
  scale: 1 / 255,
  offset: 0,
};

/**
 * Saves a small real model (flatten → dense 'embedding' → softmax) as a model artifact, as
 * the trainer would, for registry and serving tests that need something that loads.
 */
export async function saveTinyModel(
  dir: string,
  options: {
    labels?: string[];
    spec?: InputSpec;
    seed?: number;
    plugin?: string;
    metrics?: Record<string, number>;
  } = {},
): Promise<ModelArtifactManifest> {
  const tf = await loadTensorflow();
  const labels = options.labels ?? ['cat', 'dog', 'wild'];
  const spec = options.spec ?? TINY_SPEC;
  const seed = options.seed ?? 1;
  const model = tf.sequential();
  model.add(tf.layers.flatten({ inputShape: [spec.size, spec.size, 3] }));
  model.add(
    tf.layers.dense({
      units: 8,
      activation: 'relu',
      name: 'embedding',
      kernelInitializer: tf.initializers.glorotUniform({ seed }),
    }),
  );
  model.add(
    tf.layers.dense({
      units: labels.length,
      activation: 'softmax',
      name: 'probs',
      kernelInitializer: tf.initializers.glorotUniform({ seed: seed + 1 }),
    }),
  );
  try {
    return await saveModelArtifact(dir, model, {
      plugin: options.plugin ?? 'menagerie:cnn',
      pluginVersion: null,
      labels,
      inputSpec: spec,
      hyperparameters: {},
      embeddingLayer: 'embedding',
      epoch: 0,
      metrics: options.metrics ?? { val_accuracy: 0.9 },
    });
  } finally {
    model.dispose();
  }
}
