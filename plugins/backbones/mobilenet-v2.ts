import fs from 'node:fs/promises';
import path from 'node:path';
import type * as TfNode from '@tensorflow/tfjs-node';
import { MenagerieError } from '../../core/errors.js';
import type { InputSpec } from '../../data/input-spec.js';
import {
  definePlugin,
  type BackboneLoadContext,
  type BackbonePlugin,
  type BackboneSource,
  type LoadedBackbone,
} from '../../plugin-api/plugin.js';
import { writeFrozenSavedModel } from '../../tf/saved-model-writer.js';
import { readPackagedModel, type PackagedModel } from './packaged-model.js';

/** The npm package whose tarball carries the ImageNet MobileNetV2 weights (MIT). */
export const WEIGHTS_PACKAGE = 'nsfwjs';

/** Both take RGB scaled to [0, 1]; the ×1.4 graph maps it to [-1, 1] itself. */
const UNIT_RGB_224: InputSpec = { size: 224, channels: 3, fit: 'fill', scale: 1 / 255, offset: 0 };

/**
 * MobileNetV2 ×1.4 (TF-Hub's ImageNet feature-vector module, 1792 features), as a frozen
 * graph inside nsfwjs. Run as a native TensorFlow session: the graph is written once as a
 * SavedModel under the cache folder (about 6 ms an image on 2 cores). Not trainable: its
 * features feed a trained head. The default backbone.
 *
 * ```ts
 * const backbone = await mobilenetV2x140().load({ tf, cacheDir: '.menagerie/cache' });
 * const features = backbone.features(xs); // [n, 1792]
 * ```
 */
export function mobilenetV2x140(): BackbonePlugin {
  const model = 'mobilenet_v2_mid';
  return definePlugin({
    name: 'menagerie:mobilenet_v2_140',
    kind: 'backbone',
    version: '1.0.0',
    description: 'MobileNetV2 ×1.4, ImageNet (TF-Hub), 1792 features, packaged in nsfwjs',
    inputSpec: UNIT_RGB_224,
    featureSize: 1792,
    trainable: false,
    source: { kind: 'package', package: WEIGHTS_PACKAGE, location: model },
    async load({ tf, cacheDir }: BackboneLoadContext): Promise<LoadedBackbone> {
      const packaged = await readPackagedModel(WEIGHTS_PACKAGE, model);
      const featureNode = findNode(packaged, (name) =>
        name.endsWith('feature_vector/SpatialSqueeze'),
      );
      const dir = path.join(
        cacheDir,
        'backbones',
        `${model}-${packaged.weightsSha256.slice(0, 16)}`,
      );
      if (!(await exists(path.join(dir, 'saved_model.pb')))) {
        await writeFrozenSavedModel(tf, packaged, {
          dir,
          input: { node: 'input', shape: [-1, 224, 224, 3] },
          outputs: { features: { node: featureNode, shape: [-1, 1792] } },
        });
      }
      const session = await tf.node.loadSavedModel(dir, ['serve'], 'serving_default');
      return {
        weightsSha256: packaged.weightsSha256,
        source: sourceOf(packaged, model),
        featureSize: 1792,
        features: (xs) => session.predict(xs) as TfNode.Tensor2D,
        dispose: () => session.dispose(),
      };
    },
  });
}

/**
 * MobileNetV2 ×1.0 (1280 features) as a Keras layers model inside nsfwjs: ImageNet weights
 * in blocks 0–10, the blocks above fine-tuned by nsfwjs. Trainable: fine-tuning can
 * unfreeze its top blocks. Its features come from the layers model itself.
 */
export function mobilenetV2(): BackbonePlugin {
  const model = 'mobilenet_v2';
  return definePlugin({
    name: 'menagerie:mobilenet_v2',
    kind: 'backbone',
    version: '1.0.0',
    description: 'MobileNetV2 ×1.0, 1280 features, trainable, packaged in nsfwjs',
    inputSpec: UNIT_RGB_224,
    featureSize: 1280,
    trainable: true,
    source: { kind: 'package', package: WEIGHTS_PACKAGE, location: model },
    async load({ tf }: BackboneLoadContext): Promise<LoadedBackbone> {
      const packaged = await readPackagedModel(WEIGHTS_PACKAGE, model);
      const full = await tf.loadLayersModel(
        tf.io.fromMemory({ ...packaged, format: 'layers-model' }),
      );
      const cut = full.getLayer('flatten_1');
      const base = tf.model({
        name: 'mobilenet_v2_base',
        inputs: full.inputs,
        outputs: cut.output,
      });
      // nsfwjs's own head is not part of the backbone: free its weights.
      const kept = new Set(base.layers);
      for (const layer of full.layers) if (!kept.has(layer)) layer.dispose();
      for (const layer of base.layers) layer.trainable = false;
      return {
        weightsSha256: packaged.weightsSha256,
        source: sourceOf(packaged, model),
        featureSize: 1280,
        features: (xs) => base.predict(xs) as TfNode.Tensor2D,
        trainable: { model: base, blocks: mobilenetBlocks(base) },
        dispose: () => base.dispose(),
      };
    },
  });
}

/**
 * Keras MobileNetV2's blocks, bottom to top: the stem (`Conv1…`), `expanded_conv…`,
 * `block_1_…` to `block_16_…`, then the last 1×1 convolution (`Conv_1…`, `out_relu`).
 */
export function mobilenetBlocks(model: TfNode.LayersModel): string[][] {
  const blocks = new Map<string, string[]>();
  for (const layer of model.layers) {
    if (layer.weights.length === 0) continue;
    const name = layer.name;
    const block =
      /^block_\d+_/.exec(name)?.[0] ??
      (name.startsWith('expanded_conv')
        ? 'expanded_conv'
        : name.startsWith('Conv_1')
          ? 'top'
          : name.startsWith('Conv1') || name.startsWith('bn_Conv1')
            ? 'stem'
            : null);
    if (block === null) continue;
    blocks.set(block, [...(blocks.get(block) ?? []), name]);
  }
  return [...blocks.values()];
}

function sourceOf(packaged: PackagedModel, model: string): BackboneSource {
  return {
    kind: 'package',
    package: packaged.package,
    packageVersion: packaged.packageVersion,
    location: model,
  };
}

function findNode(packaged: PackagedModel, test: (name: string) => boolean): string {
  const nodes = (packaged.modelTopology as { node?: { name: string }[] } | undefined)?.node ?? [];
  const found = nodes.find((n) => test(n.name));
  if (!found) {
    throw new MenagerieError(
      'MODEL_BASE_UNAVAILABLE',
      `${packaged.dir}: no feature node in the graph`,
    );
  }
  return found.name;
}

async function exists(file: string): Promise<boolean> {
  return fs.stat(file).then(
    () => true,
    () => false,
  );
}
