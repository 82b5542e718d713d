import type * as TfNode from '@tensorflow/tfjs-node';
import type { LoadedBackbone } from '../plugin-api/plugin.js';

type Tf = Pick<typeof TfNode, 'model'>;

/**
 * Backbone + head as one model from pixels to probabilities, with the backbone's top
 * `blocks` blocks trainable. Batch norms stay frozen (and in inference mode), as Keras
 * advises for fine-tuning. The head's layers are shared, so its trained weights carry over.
 */
export function unfreezeTopBlocks(
  tf: Tf,
  backbone: LoadedBackbone,
  head: TfNode.LayersModel,
  blocks: number,
): TfNode.LayersModel {
  const base = backbone.trainable!;
  const top = new Set(base.blocks.slice(-blocks).flat());
  for (const layer of base.model.layers) {
    layer.trainable = top.has(layer.name) && layer.getClassName() !== 'BatchNormalization';
  }
  keepFrozenBatchNormInInferenceMode(base.model);
  let x = base.model.outputs[0]!;
  for (const layer of head.layers) x = layer.apply(x) as TfNode.SymbolicTensor;
  return tf.model({ name: 'fine_tuned', inputs: base.model.inputs, outputs: x });
}

/**
 * Keras runs a frozen BatchNormalization in inference mode (moving statistics, no updates);
 * tfjs does not, which would let a frozen base's statistics drift during transfer learning.
 */
export function keepFrozenBatchNormInInferenceMode(model: TfNode.LayersModel): void {
  for (const layer of model.layers) {
    if (layer.getClassName() !== 'BatchNormalization' || patched.has(layer)) continue;
    patched.add(layer);
    const call = layer.call.bind(layer);
    layer.call = (inputs, kwargs) =>
      call(inputs, layer.trainable ? kwargs : { ...kwargs, training: false });
  }
}

/** Layers already patched: a layer shared by two models is patched once. */
const patched = new WeakSet<object>();
