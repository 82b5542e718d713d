/**
 * The thread of `augmentOffThread` (augment-worker.ts): augments each batch it is sent
 * with `augmentPixels` and hands the values back, transferred rather than copied. Pure
 * JavaScript: it loads no TensorFlow and no sharp.
 */
import { parentPort } from 'node:worker_threads';
import { augmentPixels } from './augment.js';
import type { AugmentReply, AugmentRequest } from './augment-worker.js';

parentPort!.on('message', ({ id, pixels, spec, options, draws }: AugmentRequest) => {
  let reply: AugmentReply;
  try {
    const each = spec.size * spec.size * 3;
    const images = Array.from({ length: pixels.length / each }, (_, i) =>
      pixels.subarray(i * each, (i + 1) * each),
    );
    reply = { id, values: augmentPixels(images, spec, options, draws) };
  } catch (error) {
    reply = { id, error: error instanceof Error ? error.message : String(error) };
  }
  parentPort!.postMessage(reply, reply.values ? [reply.values.buffer as ArrayBuffer] : []);
});
