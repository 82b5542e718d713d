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

/** The colour model's input: 4×4 pixels, so 4×4 test images are fed as they are. */
export const COLOUR_SPEC: InputSpec = {
  size: 4,
  channels: 3,
  fit: 'fill',
  scale: 1 / 255,
  offset: 0,
};

/**
 * A model whose answers are known in closed form, for checking metrics exactly: its
 * 'embedding' layer is the image's mean red, green and blue (0–1), and its probabilities are
 * `softmax(sharpness × [r, g, b])` over the labels red, green, blue. `colourProbabilities`
 * computes the same in float64.
 */
export async function saveColourModel(
  dir: string,
  options: { sharpness?: number; plugin?: string } = {},
): Promise<ModelArtifactManifest> {
  const tf = await loadTensorflow();
  const sharpness = options.sharpness ?? COLOUR_SHARPNESS;
  const inputs = COLOUR_SPEC.size * COLOUR_SPEC.size * 3;
  const model = tf.sequential();
  model.add(tf.layers.flatten({ inputShape: [COLOUR_SPEC.size, COLOUR_SPEC.size, 3] }));
  model.add(tf.layers.dense({ units: 3, useBias: false, name: 'embedding' }));
  model.add(tf.layers.dense({ units: 3, activation: 'softmax', name: 'probs' }));
  // Flattened HWC: input i is channel i % 3, averaged over the 16 pixels.
  const mean = new Float32Array(inputs * 3);
  for (let i = 0; i < inputs; i++)
    mean[i * 3 + (i % 3)] = 1 / (COLOUR_SPEC.size * COLOUR_SPEC.size);
  const weights = [
    tf.tensor2d(mean, [inputs, 3]),
    tf.tensor2d([sharpness, 0, 0, 0, sharpness, 0, 0, 0, sharpness], [3, 3]),
    tf.zeros([3]),
  ];
  model.setWeights(weights);
  tf.dispose(weights);
  try {
    return await saveModelArtifact(dir, model, {
      plugin: options.plugin ?? 'menagerie:cnn',
      pluginVersion: null,
      labels: [...COLOUR_LABELS],
      inputSpec: COLOUR_SPEC,
      hyperparameters: {},
      embeddingLayer: 'embedding',
      epoch: 0,
      metrics: { val_accuracy: 1 },
    });
  } finally {
    model.dispose();
  }
}

export const COLOUR_LABELS = ['red', 'green', 'blue'] as const;
export const COLOUR_SHARPNESS = 4;

/** The colour model's probabilities for a solid colour, in float64. */
export function colourProbabilities(
  rgb: readonly [number, number, number],
  sharpness = COLOUR_SHARPNESS,
): number[] {
  const logits = rgb.map((v) => (sharpness * v) / 255);
  const top = Math.max(...logits);
  const e = logits.map((l) => Math.exp(l - top));
  const sum = e.reduce((a, b) => a + b, 0);
  return e.map((v) => v / sum);
}
