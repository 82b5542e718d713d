import sharp from 'sharp';
import { MenagerieError } from '../core/errors.js';
import { decoderOf, type InputSpec } from './input-spec.js';
import { sharedTensorflowJpegDecoder } from './tensorflow-jpeg-decoder.js';
import { tensorflowScale } from './tensorflow-pixels.js';

// libvips' operation cache keys every pipeline's arguments and keeps its results, but
// every image here arrives as new bytes: nothing is ever found in it. Off, serving spends
// about 6% less CPU per prediction (6.8 → 6.4 ms at concurrency 16, paired runs).
sharp.cache(false);

/** Only what is used, so both `import * as tf` and loadTensorflow()'s module fit. */
type Tf = Pick<typeof import('@tensorflow/tfjs-node'), 'tensor4d'>;

/**
 * Bumped whenever decodeToPixels can produce different pixels for the same bytes and spec
 * (kernel, flattening, orientation, either decoder's way), so pixel caches built by an older
 * version are never reused.
 */
export const PREPROCESS_VERSION = 1;

/**
 * The resampling kernel, named rather than left to sharp's default so a sharp upgrade cannot
 * silently change what models see. sharp already decodes JPEGs at a reduced DCT scale
 * (shrink-on-load) before this kernel runs: measured on 512→64, 1.6 ms an image against
 * 2.8–3.8 ms for a full decode, at 52 dB PSNR to the full-decode result; lanczos3 costs no
 * more than cubic or linear here and is 6–14 dB closer to that reference.
 */
export const RESIZE_KERNEL = 'lanczos3' as const;

/** Alpha is composited on white, as browsers show a transparent PNG. */
const BACKGROUND = { r: 255, g: 255, b: 255 };

/**
 * Decodes image bytes into `spec.size × spec.size × 3` RGB pixels (row-major HWC uint8):
 * EXIF orientation applied, alpha flattened on white, greyscale expanded, resized with
 * `spec.fit`, the way `spec.decoder` names (see InputSpec). The dataset loader and the
 * inference engine both call it, so training and serving never resize differently. Throws
 * IMAGE_UNREADABLE naming `name` when the bytes do not decode, and TF_BACKEND_UNAVAILABLE
 * when the `'tensorflow'` decoder's processes cannot run.
 *
 * ```ts
 * import fs from 'node:fs/promises';
 * import { decodeToPixels } from './data/preprocess.js';
 *
 * const spec = { size: 64, channels: 3, fit: 'fill', scale: 1 / 255, offset: 0 } as const;
 * const pixels = await decodeToPixels(await fs.readFile('cat.jpg'), spec, 'cat.jpg');
 * pixels.length; // 64 * 64 * 3
 * ```
 */
export async function decodeToPixels(
  bytes: Uint8Array,
  spec: InputSpec,
  name = 'image',
): Promise<Uint8Array> {
  if (decoderOf(spec) === 'tensorflow') {
    const pixels = await tensorflowPixels(bytes, spec);
    if (pixels) return pixels;
  }
  return sharpPixels(bytes, spec, name);
}

/**
 * Starts what decoding for `spec` needs ahead of the first image: the `'tensorflow'`
 * decoder's processes (about a second), so no request waits on them.
 */
export async function prepareDecoder(spec: InputSpec): Promise<void> {
  if (decoderOf(spec) === 'tensorflow') await sharedTensorflowJpegDecoder();
}

/**
 * The `'tensorflow'` way for a JPEG shown as stored (EXIF orientation 1): libjpeg at the
 * smallest DCT scale that keeps the size, then a bilinear resize if it is not the size yet.
 * `undefined` sends the image the sharp way (see `tensorflowScale`), as does a JPEG libjpeg
 * refuses (sharp then names the fault). Embedded ICC profiles are not applied (sharp
 * applies them): the same for training and serving.
 */
async function tensorflowPixels(
  bytes: Uint8Array,
  spec: InputSpec,
): Promise<Uint8Array | undefined> {
  const scale = tensorflowScale(bytes, spec.size);
  if (scale === undefined) return undefined;
  const jpeg = await sharedTensorflowJpegDecoder();
  return unlessRefused(jpeg.pixels(bytes, { scale, size: spec.size, fit: spec.fit }));
}

/**
 * A decoder process's pixels, or undefined when libjpeg refused the image (the sharp way
 * then decides, and names the fault); the processes' own failures, MenagerieErrors, go on.
 */
async function unlessRefused(
  pixels: Promise<Uint8Array | undefined>,
): Promise<Uint8Array | undefined> {
  try {
    return await pixels;
  } catch (error) {
    if (error instanceof MenagerieError) throw error;
    return undefined;
  }
}

/**
 * decodeToPixels for bytes in a local file (a blob store's `localPath`): the same pixels,
 * but with the `'tensorflow'` decoder a decoder process reads the file itself, so its
 * bytes are neither read nor sent by this process (0.2–0.3 ms of this thread a photo while
 * it trains). `readBytes` is what the sharp way reads, and what names a missing file.
 */
export async function decodeFileToPixels(
  file: string,
  spec: InputSpec,
  name: string,
  readBytes: () => Promise<Uint8Array>,
): Promise<Uint8Array> {
  if (decoderOf(spec) !== 'tensorflow') return decodeToPixels(await readBytes(), spec, name);
  const jpeg = await sharedTensorflowJpegDecoder();
  const pixels = await unlessRefused(jpeg.pixelsOfFile(file, { size: spec.size, fit: spec.fit }));
  // Not one for libjpeg, refused by it, or unreadable: sharp decides, or get() says why.
  return pixels ?? sharpPixels(await readBytes(), spec, name);
}

async function sharpPixels(bytes: Uint8Array, spec: InputSpec, name: string) {
  let data: Buffer;
  let info: sharp.OutputInfo;
  try {
    // sequentialRead: one top-to-bottom pass, no whole-image buffer before the shrink.
    ({ data, info } = await sharp(bytes, { sequentialRead: true, failOn: 'truncated', pages: 1 })
      .rotate()
      .resize(spec.size, spec.size, { fit: spec.fit, kernel: RESIZE_KERNEL })
      .flatten({ background: BACKGROUND })
      .removeAlpha()
      .toColourspace('srgb')
      .raw()
      .toBuffer({ resolveWithObject: true }));
  } catch (error) {
    const reason = error instanceof Error ? error.message.split('\n')[0] : String(error);
    throw new MenagerieError('IMAGE_UNREADABLE', `${name} does not decode: ${reason}`, {
      cause: error,
    });
  }
  if (info.width !== spec.size || info.height !== spec.size || info.channels !== 3) {
    throw new MenagerieError(
      'IMAGE_UNREADABLE',
      `${name} decoded to ${info.width}×${info.height}×${info.channels}, expected ${spec.size}×${spec.size}×3`,
    );
  }
  return new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
}

/**
 * Writes `pixels` (uint8, 0–255) scaled by the spec into `out` from `offset`: v × scale +
 * offset, in float32. The one place scaling happens, shared by training and serving.
 */
export function scalePixels(
  pixels: Uint8Array,
  spec: InputSpec,
  out: Float32Array,
  offset = 0,
): void {
  const { scale, offset: add } = spec;
  for (let i = 0; i < pixels.length; i++) out[offset + i] = pixels[i]! * scale + add;
}

/**
 * Stacks decoded images into one `[n, size, size, 3]` float32 tensor, scaled by the spec.
 * The caller disposes it.
 *
 * ```ts
 * const tf = await loadTensorflow();
 * const xs = pixelsToTensor(tf, [pixels], spec); // [1, 64, 64, 3]
 * ```
 */
export function pixelsToTensor(tf: Tf, pixels: readonly Uint8Array[], spec: InputSpec) {
  const each = spec.size * spec.size * 3;
  const values = new Float32Array(pixels.length * each);
  pixels.forEach((p, i) => {
    if (p.length !== each) {
      throw new RangeError(`image ${i} has ${p.length} values, expected ${each} for the spec`);
    }
    scalePixels(p, spec, values, i * each);
  });
  return tf.tensor4d(values, [pixels.length, spec.size, spec.size, 3], 'float32');
}
