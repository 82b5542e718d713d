/**
 * A process of `tensorflowJpegDecoder` (tensorflow-jpeg-decoder.ts): loads TensorFlow, says
 * so, then decodes each JPEG it is sent at the DCT scale asked and replies with its id, and
 * the error if the data is not whole. One message at a time, in arrival order; it exits
 * when its parent goes (the IPC channel closes), however the parent ended.
 */
import { loadTensorflow } from '../tf/tensorflow.js';
import type { JpegReply, JpegRequest } from './tensorflow-jpeg-decoder.js';

const reply = (message: JpegReply, then: () => void = () => undefined) =>
  process.send!(message, then);
process.on('disconnect', () => process.exit(0));
const tf = await loadTensorflow().catch((error: unknown) => {
  // Said over the channel, so the parent reports TensorFlow's reason, not a stack's last line.
  reply({ id: 0, error: String(error) }, () => process.exit(1));
  return new Promise<never>(() => undefined);
});

process.on('message', ({ id, bytes, scale }: JpegRequest) => {
  try {
    // No recovery from truncation: a file that ends early is an error, as in sharp's probe.
    tf.node.decodeJpeg(bytes, 3, scale, true, false).dispose();
    reply({ id });
  } catch (error) {
    reply({ id, error: error instanceof Error ? error.message : String(error) });
  }
});
reply({ id: 0 });
