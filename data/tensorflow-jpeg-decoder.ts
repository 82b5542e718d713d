import os from 'node:os';
import { Worker } from 'node:worker_threads';
import { isMenagerieError, MenagerieError } from '../core/errors.js';

/**
 * Decodes a JPEG at reduced scale to prove its data whole, rejecting if it is not (a
 * truncated file included). `shrink` is how many times larger the image is than wanted.
 */
export type JpegDecoder = (bytes: Uint8Array, shrink: number) => Promise<void>;

export interface JpegDecoderThreads {
  decode: JpegDecoder;
  /** Ends the threads; decodes still waiting reject. */
  close(): Promise<void>;
}

/** @internal The messages between `tensorflowJpegDecoder` and its threads. */
export interface JpegRequest {
  id: number;
  bytes: Uint8Array;
  scale: number;
}
/** @internal Id 0 says the thread is ready. */
export interface JpegReply {
  id: number;
  error?: string;
}

/**
 * The DCT scale (1, 2, 4 or 8) libjpeg decodes at for a `shrink`, as sharp picks its
 * shrink-on-load: the largest that still leaves the image at least as large as wanted, and
 * one step smaller when the shrink is exactly that scale (libjpeg's rounding).
 */
export function jpegScaleFor(shrink: number): number {
  let scale = shrink >= 8 ? 8 : shrink >= 4 ? 4 : shrink >= 2 ? 2 : 1;
  if (scale > 1 && Math.floor(shrink) === scale) scale /= 2;
  return scale;
}

const THREAD_ENTRY = new URL('./tensorflow-jpeg-thread.ts', import.meta.url).href;

/** Threads run from TypeScript source, as the process does: tsx is registered first. */
function threadSource(): URL {
  const tsx = import.meta.resolve('tsx/esm/api');
  const code =
    `import { register } from ${JSON.stringify(tsx)}; register();\n` +
    `await import(${JSON.stringify(THREAD_ENTRY)});`;
  return new URL(`data:text/javascript,${encodeURIComponent(code)}`);
}

/**
 * JPEG decoding on TensorFlow's libjpeg-turbo (`decode_jpeg` with `ratio` and no truncation
 * recovery) in worker threads: it reads every byte of entropy-coded data as sharp does, at
 * a third of sharp's CPU per 512×512 file (0.58 against 1.9 ms: a libvips pipeline's fixed
 * cost is most of sharp's), and off the event loop. Each thread loads TensorFlow (most of a
 * second, the threads in parallel), so it pays for many files, not a few. Rejects with
 * TF_BACKEND_UNAVAILABLE if TensorFlow does not load.
 *
 * ```ts
 * const jpeg = await tensorflowJpegDecoder();
 * await jpeg.decode(await fs.readFile('cat.jpg'), 16); // 512×512 to 32×32: at 1/8 scale
 * await jpeg.close();
 * ```
 */
export async function tensorflowJpegDecoder(
  options: { threads?: number } = {},
): Promise<JpegDecoderThreads> {
  const count = Math.max(1, options.threads ?? Math.min(4, os.availableParallelism()));
  const waiting = new Map<number, Waiting>();
  let nextId = 1;
  const threads = Array.from({ length: count }, () => startThread(waiting));
  try {
    await Promise.all(threads.map((t) => t.ready));
  } catch (error) {
    await Promise.all(threads.map((t) => t.worker.terminate()));
    throw error;
  }
  return {
    decode: (bytes, shrink) =>
      new Promise<void>((resolve, reject) => {
        // The least busy live thread: decodes take about as long as each other.
        const live = threads.filter((t) => !t.dead);
        if (live.length === 0) {
          reject(new MenagerieError('TF_BACKEND_UNAVAILABLE', 'no TensorFlow JPEG thread left'));
          return;
        }
        const thread = live.reduce((a, b) => (b.busy < a.busy ? b : a));
        const id = nextId++;
        waiting.set(id, { resolve, reject, thread });
        thread.busy++;
        const request: JpegRequest = { id, bytes, scale: jpegScaleFor(shrink) };
        thread.worker.postMessage(request);
      }),
    async close() {
      await Promise.all(threads.map((t) => t.worker.terminate()));
    },
  };
}

let shared: Promise<JpegDecoderThreads> | undefined;

/**
 * One `tensorflowJpegDecoder` for the process, started on first use and kept (its threads
 * do not hold the process open), so TensorFlow loads once however many ingests run; a new
 * one starts if every thread of the last has died.
 *
 * ```ts
 * const { decode } = await sharedTensorflowJpegDecoder();
 * ```
 */
export function sharedTensorflowJpegDecoder(): Promise<JpegDecoderThreads> {
  shared ??= tensorflowJpegDecoder().then((jpeg) => {
    const decode: JpegDecoder = (bytes, shrink) =>
      jpeg.decode(bytes, shrink).catch((error: unknown) => {
        if (isMenagerieError(error, 'TF_BACKEND_UNAVAILABLE')) shared = undefined;
        throw error;
      });
    return { ...jpeg, decode };
  });
  shared.catch(() => (shared = undefined));
  return shared;
}

interface Thread {
  worker: Worker;
  /** Resolves once TensorFlow is loaded in it. */
  ready: Promise<void>;
  busy: number;
  dead: boolean;
}

interface Waiting {
  resolve(): void;
  reject(error: Error): void;
  thread: Thread;
}

function startThread(waiting: Map<number, Waiting>): Thread {
  const worker = new Worker(threadSource());
  worker.unref();
  let ready!: { resolve(): void; reject(error: Error): void };
  const thread: Thread = {
    worker,
    ready: new Promise<void>((resolve, reject) => (ready = { resolve, reject })),
    busy: 0,
    dead: false,
  };
  const died = (why: string) => {
    thread.dead = true;
    const error = new MenagerieError('TF_BACKEND_UNAVAILABLE', `a TensorFlow JPEG thread ${why}`);
    ready.reject(error);
    for (const [id, w] of waiting) {
      if (w.thread !== thread) continue;
      waiting.delete(id);
      w.reject(error);
    }
  };
  worker.on('message', ({ id, error }: JpegReply) => {
    if (id === 0) return ready.resolve();
    const w = waiting.get(id);
    if (!w) return;
    waiting.delete(id);
    thread.busy--;
    if (error === undefined) w.resolve();
    else w.reject(new Error(error.split('\n').join(' ')));
  });
  worker.on('error', (error) => died(`crashed: ${error.message}`));
  worker.on('exit', (code) => died(`exited with code ${code}`));
  return thread;
}
