// The model every ML benchmark measures, and the Python packages its Keras anchors need.
import type * as TfNode from '@tensorflow/tfjs-node';
import type { InputSpec } from '../data/input-spec.js';
import { cnnModel } from '../plugins/models/cnn.js';
import type { ModelBuildContext } from '../plugin-api/plugin.js';
import { HyperParameters } from '../plugin-api/hyperparameters.js';

/** Installed once into bench/.venv by ensurePythonEnv; the anchors import keras on TF 2.21. */
export const KERAS_ANCHOR_PACKAGES = ['pillow', 'tensorflow-cpu==2.21.0', 'keras'];

/**
 * The `menagerie:cnn` plugin with its default hyperparameters, uncompiled: the reference
 * baseline Conv32 3×3 relu - MaxPool 2 - Conv64 3×3 relu - MaxPool 2 - Flatten - Dense128
 * relu - Dropout 0.5 - Dense(labels) softmax at 64×64, the same layers as `reference_cnn`
 * in bench/anchors/*.py. Built through the plugin so the benchmarks measure what we ship.
 * `size` picks the plugin's `input_size` (64, 96 or 128).
 *
 * ```ts
 * const { model, input } = await referenceCnn(tf, ['cat', 'dog', 'wild']);
 * const wider = await referenceCnn(tf, ['cat', 'dog', 'wild'], 96);
 * model.compile({ optimizer: 'adam', loss: 'categoricalCrossentropy' });
 * ```
 */
export async function referenceCnn(
  tf: ModelBuildContext['tf'],
  labels: readonly string[],
  size = 64,
): Promise<{ model: TfNode.LayersModel; input: InputSpec }> {
  const cnn = cnnModel();
  const hp = new HyperParameters({ input_size: size });
  cnn.space(hp);
  const input = cnn.inputSpec(hp);
  const model = await cnn.build(hp, { tf, labels, input, seed: 0 });
  return { model, input };
}
