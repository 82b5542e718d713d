/**
 * A process of `tensorflowJpegDecoder` (tensorflow-jpeg-decoder.ts): loads TensorFlow, says
 * so, then decodes each JPEG it is sent (or reads from the file named) at the DCT scale asked
 * (or the `'tensorflow'` decoder's, for a file) and replies with its id, the pixels if a
 * resize was asked, and the error if the data is not whole. Requests come in arrays and are
 * answered in one array, in order; it exits when its parent goes (the IPC channel closes),
 * however the parent ended.
 */
import fs from 'node:fs';
import type * as TfNode from '@tensorflow/tfjs-node';
import type { NodeJSKernelBackend } from '@tensorflow/tfjs-node/dist/nodejs_kernel_backend.js';
import { loadTensorflow } from '../tf/tensorflow.js';
import { tidyRead } from '../tf/tidy-read.js';
import type { JpegReply, JpegRequest } from './tensorflow-jpeg-decoder.js';
import { tensorflowScale } from './tensorflow-pixels.js';

const reply = (message: JpegReply[], then: () => void = () => undefined) =>
  process.send!(message, then);
process.on('disconnect', () => process.exit(0));
const tf = await loadTensorflow().catch((error: unknown) => {
  // Said over the channel, so the parent reports TensorFlow's reason, not a stack's last line.
  reply([{ id: 0, error: String(error) }], () => process.exit(1));
  return new Promise<never>(() => undefined);
});

const backend = tf.backend() as NodeJSKernelBackend;

process.on('message', (requests: JpegRequest[]) => reply(requests.map(answer)));

function answer({ id, source, resize }: JpegRequest): JpegReply {
  try {
    const bytes = 'path' in source ? fs.readFileSync(source.path) : source.bytes;
    // A file is only ever sent for pixels (pixelsOfFile), so `resize` is there.
    const scale = 'path' in source ? tensorflowScale(bytes, resize?.size ?? 1) : source.scale;
    if (scale === undefined) return { id }; // no pixels: the sharp way
    if (resize) return { id, pixels: resized(bytes, scale, resize.size, resize.fit) };
    // No recovery from truncation: a file that ends early is an error, as in sharp's probe.
    // The op itself, uint8: tf.node.decodeJpeg adds a cast to int32, which a proof never
    // reads (0.05 of 0.55 ms of this process's CPU for a 512×512 file at 1/8).
    tf.tidy(() => backend.decodeJpeg(bytes, 3, scale, true, false, 1, '')).dispose();
    return { id };
  } catch (error) {
    return { id, error: error instanceof Error ? error.message : String(error) };
  }
}
reply([{ id: 0 }]);

/**
 * Decoded at `scale` (no truncation recovery), its centred square for 'cover', then, unless
 * that is already `size × size`, a bilinear resize with half-pixel centres, rounded.
 */
function resized(bytes: Uint8Array, scale: number, size: number, fit: 'fill' | 'cover') {
  const [values] = tidyRead(tf, () => {
    let image = tf.node.decodeJpeg(bytes, 3, scale, true, false) as TfNode.Tensor3D;
    const [height, width] = image.shape;
    if (fit === 'cover' && width !== height) {
      const side = Math.min(width, height);
      const top = Math.floor((height - side) / 2);
      const left = Math.floor((width - side) / 2);
      image = image.slice([top, left, 0], [side, side, 3]);
    }
    if (image.shape[0] === size && image.shape[1] === size) return [image];
    // Bilinear between pixel values stays within 0–255: rounding is all it needs.
    return [tf.image.resizeBilinear(image, [size, size], false, true).round()];
  });
  return Uint8Array.from(values);
}
