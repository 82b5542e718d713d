import type * as TfNode from '@tensorflow/tfjs-node';
import { createRng } from '../core/random.js';
import { augmentBatch, DEFAULT_AUGMENT } from '../data/dataset-loader.js';
import type { InputSpec } from '../data/input-spec.js';
import { pixelsToTensor } from '../data/preprocess.js';
import type { LoadedBackbone } from '../plugin-api/plugin.js';
import { tidyRead } from '../tf/tidy-read.js';

type Tf = Pick<typeof TfNode, 'tensor4d' | 'concat' | 'tidy' | 'dispose'>;

/**
 * Bumped when an augmented view's pixels change (its transforms or how they are drawn), so
 * feature caches of older views are never read (see data/feature-cache.ts).
 */
export const VIEWS_VERSION = 1;

/** Images a backbone sees at once: a batch of 224×224 images is 600 KB each in float32. */
export const FEATURE_BATCH = 16;

/** One image to compute features of: its decoded pixels and which view of it. */
export interface FeatureInput {
  /** Hex sha256 of the image bytes: seeds its augmented views (needed for view > 0). */
  sha256?: string;
  /** `spec.size × spec.size × 3` uint8 pixels from decodeToPixels. */
  pixels: Uint8Array;
  /** 0: the image as it is; v > 0: augmented copy v (flip, rotation, zoom, shift, brightness). */
  view: number;
}

/**
 * Backbone features of decoded images: the one path training, evaluation, serving and
 * similar images all take, so the same image and view always give the same vector. View
 * v > 0 is a fixed augmented copy, drawn from the image's sha256 and v, so it can be cached.
 *
 * ```ts
 * const [vector] = backboneFeatures(tf, backbone, spec, [{ sha256, pixels, view: 0 }]);
 * vector.length; // the backbone's featureSize
 * ```
 */
export function backboneFeatures(
  tf: Tf,
  backbone: LoadedBackbone,
  spec: InputSpec,
  inputs: readonly FeatureInput[],
): Float32Array[] {
  const out: Float32Array[] = [];
  for (let start = 0; start < inputs.length; start += FEATURE_BATCH) {
    const chunk = inputs.slice(start, start + FEATURE_BATCH);
    const [values] = tidyRead(tf, () => {
      const xs = tf.concat(chunk.map((input) => viewTensor(tf, spec, input))) as TfNode.Tensor4D;
      return [backbone.features(xs)];
    });
    const size = values.length / chunk.length;
    for (let i = 0; i < chunk.length; i++) out.push(values.slice(i * size, (i + 1) * size));
  }
  return out;
}

function viewTensor(tf: Tf, spec: InputSpec, input: FeatureInput): TfNode.Tensor4D {
  if (input.view === 0) return pixelsToTensor(tf, [input.pixels], spec);
  if (!input.sha256)
    throw new RangeError('an augmented view needs the image sha256 it is drawn from');
  const rng = createRng(`${input.sha256}/view/${input.view}`);
  return augmentBatch(tf, [input.pixels], spec, DEFAULT_AUGMENT, rng);
}
