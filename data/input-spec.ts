/**
 * How an image becomes a model input. Saved beside every model and used by both the
 * dataset loader and the inference engine, so training and serving can never resize or
 * scale differently (the reference project did, and lost accuracy in production).
 *
 * ```ts
 * import type { InputSpec } from './data/input-spec.js';
 * const spec: InputSpec = { size: 64, channels: 3, fit: 'fill', scale: 1 / 255, offset: 0 };
 * // pixel value v (0–255) reaches the model as v * scale + offset
 * ```
 */
export interface InputSpec {
  /** Width and height the image is resized to. */
  size: number;
  /** 3 (RGB); alpha is removed and greyscale expanded. */
  channels: 3;
  /** sharp's resize `fit`: 'fill' stretches (Keras ImageDataGenerator), 'cover' crops. */
  fit: 'fill' | 'cover';
  /** Multiplier applied to 0–255 pixel values. */
  scale: number;
  /** Added after scaling: 0 for [0,1] inputs, -1 with scale 1/127.5 for MobileNet's [-1,1]. */
  offset: number;
  /**
   * How bytes become pixels (`decodeToPixels`); absent means `'sharp'`, as every model saved
   * before this field was trained on.
   * - `'sharp'`: libvips decodes (a JPEG at a reduced DCT scale), then a lanczos3 resize.
   * - `'tensorflow'`: a JPEG is decoded by TensorFlow's libjpeg at the smallest DCT scale
   *   that keeps the size (`dctScaleFor`), then resized bilinearly (half-pixel centres) if
   *   not the size already, in the JPEG decoder processes: about a quarter of sharp's CPU
   *   per photo. Other formats, and JPEGs turned by an EXIF orientation,
   *   in CMYK, or that libjpeg will not decode, go the `'sharp'` way.
   */
  decoder?: ImageDecoder;
}

/** The ways `InputSpec.decoder` can name. */
export const IMAGE_DECODERS = ['sharp', 'tensorflow'] as const;
export type ImageDecoder = (typeof IMAGE_DECODERS)[number];

/** The decoder a spec uses: `'sharp'` when it names none. */
export function decoderOf(spec: InputSpec): ImageDecoder {
  return spec.decoder ?? 'sharp';
}
