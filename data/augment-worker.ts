import { Worker } from 'node:worker_threads';
import { MenagerieError } from '../core/errors.js';
import { threadSource } from '../core/thread-source.js';
import type { augmentPixels, AugmentOptions, AugmentSpec } from './augment.js';

/** @internal The messages between `augmentOffThread` and its thread. */
export interface AugmentRequest {
  id: number;
  /** The batch's images one after another (`size × size × 3` bytes each). */
  pixels: Uint8Array;
  spec: AugmentSpec;
  options: Required<AugmentOptions>;
  draws: Float64Array;
}
/** @internal */
export interface AugmentReply {
  id: number;
  values?: Float32Array;
  error?: string;
}

const ENTRY = new URL('./augment-thread.ts', import.meta.url).href;

interface Waiting {
  resolve(values: Float32Array): void;
  reject(error: Error): void;
  worker: Worker;
}

let thread: Worker | null = null;
let nextId = 1;
const waiting = new Map<number, Waiting>();

function start(): Worker {
  const worker = new Worker(threadSource(ENTRY));
  const held = () => [...waiting].filter(([, w]) => w.worker === worker);
  const fail = (why: string) => {
    if (thread === worker) thread = null;
    const error = new MenagerieError(
      'INTERNAL_SERVER_ERROR',
      `the augmentation thread ${why}; the next batch starts it again`,
    );
    // Only what this thread held: a new thread may already be at work on later batches.
    for (const [id, w] of held()) {
      waiting.delete(id);
      w.reject(error);
    }
  };
  worker.on('message', ({ id, values, error }: AugmentReply) => {
    const w = waiting.get(id);
    if (!w) return;
    waiting.delete(id);
    if (held().length === 0) worker.unref();
    if (values) w.resolve(values);
    else {
      const why = `augmenting a batch failed: ${error ?? 'no values'}`;
      w.reject(new MenagerieError('INTERNAL_SERVER_ERROR', why));
    }
  });
  worker.on('error', (error) => fail(`failed: ${error.message}`));
  worker.on('exit', (code) => fail(`exited with code ${code}`));
  worker.unref();
  return worker;
}

/**
 * `augmentPixels`, same arguments, on a worker thread shared by the process, so the pixel
 * loop (about 4 ms a batch of 32×64²) runs beside the training step instead of before it on
 * the thread that trains. The thread holds the process open only while a batch is on it.
 * `draws` is handed over to the thread: unusable here afterwards.
 */
export function augmentOffThread(
  ...[pixels, spec, options, draws]: Parameters<typeof augmentPixels>
): Promise<Float32Array> {
  const worker = (thread ??= start());
  const id = nextId++;
  const done = new Promise<Float32Array>((resolve, reject) =>
    waiting.set(id, { resolve, reject, worker }),
  );
  worker.ref();
  // One compact copy, handed over: a view into the pixel cache's buffer would clone all of it.
  const each = spec.size * spec.size * 3;
  const batch = new Uint8Array(pixels.length * each);
  pixels.forEach((p, i) => batch.set(p, i * each));
  const request: AugmentRequest = {
    id,
    pixels: batch,
    spec: { size: spec.size, scale: spec.scale, offset: spec.offset },
    options,
    draws,
  };
  worker.postMessage(request, [batch.buffer, draws.buffer as ArrayBuffer]);
  return done;
}
