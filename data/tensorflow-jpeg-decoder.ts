import { fork, type ChildProcess } from 'node:child_process';
import type { Socket } from 'node:net';
import os from 'node:os';
import { fileURLToPath } from 'node:url';
import { MenagerieError } from '../core/errors.js';

/**
 * Decodes a JPEG at reduced scale to prove its data whole, rejecting if it is not (a
 * truncated file included). `shrink` is how many times larger the image is than wanted.
 */
export type JpegDecoder = (bytes: Uint8Array, shrink: number) => Promise<void>;

/** What a JPEG is decoded to by `JpegDecoderProcesses.pixels`. */
export interface JpegPixelsRequest {
  /** The DCT scale denominator libjpeg decodes at: 1, 2, 4 or 8. */
  scale: number;
  /** Width and height of the result. */
  size: number;
  /** 'fill' stretches the whole image; 'cover' takes its centred square first. */
  fit: 'fill' | 'cover';
}

export interface JpegDecoderProcesses {
  decode: JpegDecoder;
  /**
   * Decodes a JPEG at `request.scale` and resizes it bilinearly (half-pixel centres, rounded)
   * to `size × size × 3` RGB bytes. Rejects with libjpeg's message if it does not decode,
   * with TF_BACKEND_UNAVAILABLE if its process dies first.
   */
  pixels(bytes: Uint8Array, request: JpegPixelsRequest): Promise<Uint8Array>;
  /**
   * `pixels` for the file at `path`, which the process reads, picking the scale itself
   * (`tensorflowScale`); undefined when the file is not one for libjpeg (the sharp way).
   * Rejects as `pixels` does, and if the file cannot be read.
   */
  pixelsOfFile(
    path: string,
    request: Omit<JpegPixelsRequest, 'scale'>,
  ): Promise<Uint8Array | undefined>;
  /** False once closed, or once every process has died with no restart left. */
  alive(): boolean;
  /** The processes' ids, for diagnostics. */
  pids(): number[];
  /** Ends the processes; decodes still waiting reject. */
  close(): Promise<void>;
}

/**
 * @internal What `tensorflowJpegDecoder` asks of its processes. Messages are arrays, each
 * answered by one array: the file requests made in one turn of its event loop go together,
 * any other request alone.
 */
export interface JpegRequest {
  id: number;
  /** The JPEG, or the file the process reads it from (and then picks the scale itself). */
  source: { bytes: Uint8Array; scale: number } | { path: string };
  /** Asked for pixels: the reply carries them. Otherwise the decode only proves the data. */
  resize?: Omit<JpegPixelsRequest, 'scale'>;
}
/** @internal Id 0 says the process is ready, or why it could not load TensorFlow. */
export interface JpegReply {
  id: number;
  error?: string;
  /** Asked for pixels and absent: a file that is not one for libjpeg (the sharp way). */
  pixels?: Uint8Array;
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

const ENTRY = fileURLToPath(new URL('./tensorflow-jpeg-process.ts', import.meta.url));
/**
 * The processes run from TypeScript source, as this one does, through tsx's ESM hooks only
 * (as bin/menagerie.js registers them): its CommonJS hooks, which TensorFlow.js's hundreds of
 * `require`s do not need, made a process take 0.9–1.2 s to be up instead of 0.75–0.8.
 */
const TSX = import.meta.resolve('tsx/esm');
/** Processes started again after dying, per decoder, before it gives up on TensorFlow. */
const RESTARTS = 3;

/**
 * JPEG decoding on TensorFlow's libjpeg-turbo (`decode_jpeg` with `ratio` and no truncation
 * recovery) in child processes: it reads every byte of entropy-coded data as sharp does, at
 * a third of sharp's CPU per 512×512 file (0.58 against 1.9 ms: a libvips pipeline's fixed
 * cost is most of sharp's), off the event loop, and a JPEG that crashes libjpeg takes down
 * a child, not the caller. Each process loads TensorFlow (about a second, the processes in
 * parallel), so it pays for many files, not a few. A process that dies fails its waiting
 * decodes and is started again, up to RESTARTS times; the processes never hold the caller's
 * process open while idle. Rejects with TF_BACKEND_UNAVAILABLE if TensorFlow does not load.
 *
 * ```ts
 * const jpeg = await tensorflowJpegDecoder();
 * await jpeg.decode(await fs.readFile('cat.jpg'), 16); // 512×512 to 32×32: at 1/8 scale
 * await jpeg.close();
 * ```
 */
export async function tensorflowJpegDecoder(
  options: { processes?: number } = {},
): Promise<JpegDecoderProcesses> {
  const count = Math.max(1, options.processes ?? Math.min(4, os.availableParallelism()));
  const waiting = new Map<number, Waiting>();
  let nextId = 1;
  let restarts = 0;
  let closed = false;
  let busy = 0;
  const workers: Worker[] = [];
  /** Referenced only while a decode waits, so an idle decoder never keeps a CLI running. */
  const hold = (on: boolean) => {
    for (const w of workers) holdWorker(w, on);
  };
  const settle = (id: number, error?: Error, pixels?: Uint8Array) => {
    const w = waiting.get(id);
    if (!w) return;
    waiting.delete(id);
    w.worker.busy--;
    if (--busy === 0) hold(false);
    if (error) w.reject(error);
    else w.resolve(pixels);
  };
  const start = (): Worker => {
    const worker = startWorker({
      onReply: ({ id, error, pixels }) =>
        settle(id, error ? new Error(oneLine(error)) : undefined, pixels),
      onDeath: (error) => {
        for (const [id, w] of waiting) if (w.worker === worker) settle(id, error);
        const at = workers.indexOf(worker);
        if (closed || at < 0) return;
        if (restarts++ < RESTARTS) workers[at] = start();
        else workers.splice(at, 1);
      },
    });
    // Held while it starts (someone waits on it), let go once up if nothing is waiting.
    void worker.ready.then(
      () => busy === 0 && holdWorker(worker, false),
      () => undefined,
    );
    return worker;
  };
  for (let i = 0; i < count; i++) workers.push(start());
  const close = async () => {
    closed = true;
    await Promise.all(workers.map((w) => w.stop()));
  };
  try {
    await Promise.all(workers.map((w) => w.ready));
  } catch (error) {
    await close();
    throw error;
  }
  const request = async (
    source: JpegRequest['source'],
    resize?: JpegRequest['resize'],
  ): Promise<Uint8Array | undefined> => {
    // The least busy process that is up; one being started again is waited for.
    const up = workers.filter((w) => w.up);
    const worker = up.length > 0 ? up.reduce((a, b) => (b.busy < a.busy ? b : a)) : workers[0];
    if (!worker || closed) {
      throw new MenagerieError('TF_BACKEND_UNAVAILABLE', 'no TensorFlow JPEG process left');
    }
    if (!worker.up) await worker.ready;
    const id = nextId++;
    const done = new Promise<Uint8Array | undefined>((resolve, reject) =>
      waiting.set(id, { resolve, reject, worker }),
    );
    worker.busy++;
    if (busy++ === 0) hold(true);
    // Files are asked for by the dataset loader, a batch's worth at once while a training
    // step holds this thread: as one message each way, they cost this thread a write and
    // the process a wakeup per batch, not per file (the processes' CPU in epoch 1 of
    // `bench epoch-e2e`: 2.21-2.46 s against 2.38-2.70). Bytes (a prediction, an ingest's
    // proof) go at once: a reply that waits for the others' decodes delays a prediction
    // (`bench predict-batch`, alternated: 811 and 896 against 944 and 1,040 images/s).
    const batched = 'path' in source;
    worker.send({ id, source, ...(resize && { resize }) }, (error) => settle(id, error), batched);
    return done;
  };
  return {
    decode: async (bytes, shrink) => void (await request({ bytes, scale: jpegScaleFor(shrink) })),
    async pixels(bytes, { scale, size, fit }) {
      return sized(await request({ bytes, scale }, { size, fit }), size);
    },
    async pixelsOfFile(path, { size, fit }) {
      const pixels = await request({ path }, { size, fit });
      return pixels && sized(pixels, size);
    },
    close,
    alive: () => !closed && workers.length > 0,
    pids: () => workers.flatMap((w) => (w.child.pid === undefined ? [] : [w.child.pid])),
  };
}

let shared: Promise<JpegDecoderProcesses> | undefined;
let sharedUp: JpegDecoderProcesses | undefined;

/**
 * One `tensorflowJpegDecoder` for the process, started on first use and kept (its processes
 * do not hold this one open), so TensorFlow loads once however many ingests run; a new one
 * starts if the last gave up or failed to start.
 *
 * ```ts
 * const { decode } = await sharedTensorflowJpegDecoder();
 * ```
 */
export function sharedTensorflowJpegDecoder(): Promise<JpegDecoderProcesses> {
  if (sharedUp && !sharedUp.alive()) shared = sharedUp = undefined;
  if (shared) return shared;
  const current = (shared = tensorflowJpegDecoder());
  current.then(
    (jpeg) => (sharedUp = jpeg),
    () => {
      if (shared === current) shared = undefined;
    },
  );
  return current;
}

interface Worker {
  child: ChildProcess;
  /** Resolves once TensorFlow is loaded in it. */
  ready: Promise<void>;
  up: boolean;
  busy: number;
  /**
   * Sends a request, calling `fail` if it cannot be sent. A `batched` one waits for the
   * others made in the same turn of the event loop, and they go and come back together.
   */
  send(request: JpegRequest, fail: (error: Error) => void, batched: boolean): void;
  stop(): Promise<void>;
}

interface Waiting {
  resolve(pixels?: Uint8Array): void;
  reject(error: Error): void;
  worker: Worker;
}

function startWorker(events: {
  onReply(reply: JpegReply): void;
  onDeath(error: MenagerieError): void;
}): Worker {
  const child = fork(ENTRY, [], {
    execArgv: ['--import', TSX],
    // Buffers cross as bytes, not as JSON arrays of numbers.
    serialization: 'advanced',
    // TensorFlow's start-up lines stay out of the caller's output; the last line it wrote
    // names the cause if the process dies.
    stdio: ['ignore', 'ignore', 'pipe', 'ipc'],
    // Its own process group: a Ctrl-C meant for the caller reaches it only as the caller's
    // exit (its IPC channel closes), not mid-decode.
    detached: true,
    env: { ...process.env, TF_CPP_MIN_LOG_LEVEL: process.env.TF_CPP_MIN_LOG_LEVEL ?? '2' },
  });
  let ready!: { resolve(): void; reject(error: Error): void };
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  let stderr = '';
  type Outgoing = { request: JpegRequest; fail: (error: Error) => void };
  // A process that died since the decodes picked it fails the send, and so the decodes.
  const send = (sent: Outgoing[]) =>
    child.send(
      sent.map((s) => s.request),
      (error) => error && sent.forEach((s) => s.fail(error)),
    );
  let outbox: Outgoing[] = [];
  const flush = () => {
    send(outbox);
    outbox = [];
  };
  const worker: Worker = {
    child,
    ready: new Promise<void>((resolve, reject) => (ready = { resolve, reject })),
    up: false,
    busy: 0,
    send(request, fail, batched) {
      if (!batched) return void send([{ request, fail }]);
      if (outbox.length === 0) setImmediate(flush);
      outbox.push({ request, fail });
    },
    async stop() {
      if (child.exitCode !== null || child.signalCode !== null) return;
      // An idle process is let go (holdWorker): held again, or the caller's process could
      // end while it waits for the exit.
      holdWorker(worker, true);
      child.kill();
      await exited;
    },
  };
  worker.ready.catch(() => undefined); // also reported to each decode that waits on it
  child.on('message', (replies: JpegReply[]) => {
    const [reply] = replies;
    if (reply?.id !== 0) return replies.forEach(events.onReply);
    if (reply.error !== undefined) {
      return ready.reject(new MenagerieError('TF_BACKEND_UNAVAILABLE', oneLine(reply.error)));
    }
    worker.up = true;
    stderr = ''; // TensorFlow's start-up lines; what comes later may tell why it died
    ready.resolve();
  });
  let dead = false;
  child.stderr!.setEncoding('utf8');
  child.stderr!.on('data', (text: string) => (stderr = (stderr + text).slice(-2000)));
  const died = (why: string) => {
    if (dead) return; // 'error' and 'exit' can both come
    dead = true;
    worker.up = false;
    const last = stderr.trim().split('\n').at(-1);
    const error = new MenagerieError(
      'TF_BACKEND_UNAVAILABLE',
      `a TensorFlow JPEG process ${why}${last ? `: ${last}` : ''}`,
    );
    ready.reject(error);
    events.onDeath(error);
  };
  child.on('error', (error) => died(`failed: ${error.message}`));
  child.once('exit', (code, signal) =>
    died(signal ? `was killed by ${signal}` : `exited with code ${String(code)}`),
  );
  return worker;
}

/** Whether a process holds the caller's event loop open: its handle, channel and stderr. */
function holdWorker({ child }: Worker, on: boolean): void {
  const handles = [child, child.channel, child.stderr as Socket | null];
  for (const handle of handles) {
    if (on) handle?.ref();
    else handle?.unref();
  }
}

function sized(pixels: Uint8Array | undefined, size: number): Uint8Array {
  if (pixels?.length !== size * size * 3) {
    throw new Error(`decoded to ${pixels?.length ?? 0} bytes, not ${size}×${size}×3`);
  }
  return pixels;
}

function oneLine(text: string): string {
  return text.split('\n').join(' ');
}
