/**
 * A thread of `tensorflowJpegDecoder` (tensorflow-jpeg-decoder.ts): loads TensorFlow, says
 * so, then decodes each JPEG it is sent at the DCT scale asked and replies with its id, and
 * the error if the data is not whole. One message at a time, in arrival order.
 */
import { parentPort } from 'node:worker_threads';
import { loadTensorflow } from '../tf/tensorflow.js';
import type { JpegReply, JpegRequest } from './tensorflow-jpeg-decoder.js';

const port = parentPort!;
const tf = await loadTensorflow();

port.on('message', ({ id, bytes, scale }: JpegRequest) => {
  let reply: JpegReply = { id };
  try {
    // No recovery from truncation: a file that ends early is an error, as in sharp's probe.
    tf.node.decodeJpeg(bytes, 3, scale, true, false).dispose();
  } catch (error) {
    reply = { id, error: error instanceof Error ? error.message : String(error) };
  }
  port.postMessage(reply);
});
port.postMessage({ id: 0 } satisfies JpegReply);
