import type * as TfNode from '@tensorflow/tfjs-node';
import type { InputSpec } from '../../data/input-spec.js';
import type { HyperParameters } from '../../plugin-api/hyperparameters.js';
import {
  definePlugin,
  type BackbonePlugin,
  type BackboneUse,
  type ModelPlugin,
} from '../../plugin-api/plugin.js';
import { mobilenetV2, mobilenetV2x140 } from '../backbones/mobilenet-v2.js';
import { tfjsModelBackbone } from '../backbones/tfjs-model-backbone.js';

/** The backbones shipped inside npm packages, by the short name `--hp backbone=` takes. */
const PACKAGED: Record<string, () => BackbonePlugin> = {
  mobilenet_v2_140: mobilenetV2x140,
  mobilenet_v2: mobilenetV2,
};
const DEFAULT_BACKBONE = 'mobilenet_v2_140';

interface TransferValues {
  backbone: BackbonePlugin;
  headUnits: number;
  dropout: number;
  views: number;
  fineTune: { blocks: number; afterEpoch: number; learningRateFactor: number } | null;
}

/**
 * Declares the space: the backbone (a packaged one, or the URL or path of a tfjs layers
 * model given as `backbone`), the head, the learning rate and the augmented views; and for
 * trainable backbones, fine-tuning of the top blocks.
 */
function transferValues(
  hp: HyperParameters,
  backbones: Map<string, BackbonePlugin>,
): TransferValues {
  const given = assigned(hp, 'backbone');
  const names = Object.keys(PACKAGED);
  // A URL or path joins the choices, so `--hp backbone=/models/x` passes the space's check.
  const choices = given && !names.includes(given) ? [...names, given] : names;
  const name = hp.choice('backbone', choices, { default: DEFAULT_BACKBONE });
  let backbone = backbones.get(name);
  if (!backbone) {
    backbone = PACKAGED[name]?.() ?? urlBackbone(hp, name);
    backbones.set(name, backbone);
  }
  const headUnits = hp.choice('head_units', [0, 128, 256, 512], { default: 0 });
  const dropout = hp.float('dropout', 0, 0.6, { step: 0.1, default: 0.2 });
  hp.float('learning_rate', 1e-4, 3e-2, { sampling: 'log', default: 3e-3 });
  hp.choice('optimizer', ['adam', 'sgd', 'rmsprop'], { default: 'adam' });
  const views = hp.int('views', 1, 8, { default: 4 });
  const trainable = choices.filter((c) => c !== DEFAULT_BACKBONE);
  const fineTune = hp.conditionalScope('backbone', trainable, () => {
    const blocks = hp.int('fine_tune_blocks', 0, 8, { default: 0 });
    const afterEpoch = hp.int('fine_tune_after', 1, 50, { default: 10 });
    const learningRateFactor = hp.float('fine_tune_lr_factor', 0.01, 1, {
      sampling: 'log',
      default: 0.1,
    });
    return blocks > 0 && backbone.trainable ? { blocks, afterEpoch, learningRateFactor } : null;
  });
  return { backbone, headUnits, dropout, views, fineTune: fineTune ?? null };
}

/** A URL or path backbone's own settings: its feature layer and preprocessing. */
function urlBackbone(hp: HyperParameters, location: string): BackbonePlugin {
  const featureLayer = String(assigned(hp, 'feature_layer') ?? '');
  const inputSize = Number(assigned(hp, 'input_size') ?? 224);
  const range = String(assigned(hp, 'input_range') ?? '[-1,1]');
  hp.fixed('feature_layer', featureLayer);
  hp.fixed('input_size', inputSize);
  hp.fixed('input_range', range);
  const spec: InputSpec =
    range === '[0,1]'
      ? { size: inputSize, channels: 3, fit: 'fill', scale: 1 / 255, offset: 0 }
      : { size: inputSize, channels: 3, fit: 'fill', scale: 1 / 127.5, offset: -1 };
  return tfjsModelBackbone({ location, featureLayer, inputSpec: spec });
}

/** A value given for a hyperparameter not declared yet, if any. */
function assigned(hp: HyperParameters, name: string): string | undefined {
  try {
    return String(hp.get(name));
  } catch {
    return undefined;
  }
}

/**
 * Transfer learning on a pretrained backbone: MobileNetV2 ×1.4 with ImageNet weights
 * (default; packaged in an npm dependency, so it works offline), MobileNetV2 ×1.0 (can be
 * fine-tuned), or any tfjs layers model by URL or path. The backbone's features are
 * computed once per image and augmented view and cached; a small head (a softmax over
 * them, optionally after a ReLU layer) trains on them in well under a second an epoch.
 * With `fine_tune_blocks`, the top blocks of a trainable backbone then train with the head
 * on pixels, from `fine_tune_after` or when the head stops improving.
 *
 * ```sh
 * npx menagerie train --plugin transfer
 * npx menagerie train --plugin transfer --hp backbone=mobilenet_v2 --hp fine_tune_blocks=2
 * npx menagerie train --plugin transfer --hp backbone=/models/my_mobilenet --hp feature_layer=conv_pw_13_relu
 * ```
 */
export function transferModel(): ModelPlugin {
  const backbones = new Map<string, BackbonePlugin>();
  const read = (hp: HyperParameters) => transferValues(hp, backbones);
  return definePlugin({
    name: 'menagerie:transfer',
    kind: 'model',
    version: '1.0.0',
    description: 'A pretrained backbone (MobileNetV2 ×1.4, ImageNet) with a trained head',
    space: (hp) => void read(hp),
    inputSpec: (hp) => read(hp).backbone.inputSpec,
    backbone(hp): BackboneUse {
      const v = read(hp);
      // A packaged backbone goes by its registered name; others are their own plugin.
      const registered = v.backbone.source.kind === 'package' ? v.backbone.name : v.backbone;
      return { backbone: registered, views: v.views, ...(v.fineTune && { fineTune: v.fineTune }) };
    },
    build(hp, { tf, labels, seed, features }) {
      const v = read(hp);
      const init = (offset: number) =>
        seed === undefined
          ? {}
          : { kernelInitializer: tf.initializers.glorotUniform({ seed: seed + offset }) };
      const inputShape = [features?.size ?? 0];
      const layers: TfNode.layers.Layer[] =
        v.headUnits > 0
          ? [
              tf.layers.dense({
                inputShape,
                units: v.headUnits,
                activation: 'relu',
                name: 'embedding',
                ...init(1),
              }),
              tf.layers.dropout({ rate: v.dropout, name: 'head_dropout' }),
            ]
          : // A linear head: the features themselves are the embedding (dropout is identity when serving).
            [tf.layers.dropout({ inputShape, rate: v.dropout, name: 'embedding' })];
      layers.push(
        tf.layers.dense({
          units: labels.length,
          activation: 'softmax',
          name: 'predictions',
          ...init(2),
        }),
      );
      return tf.sequential({ name: 'transfer_head', layers });
    },
    embeddingLayer: 'embedding',
  });
}
