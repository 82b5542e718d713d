import { Worker } from 'node:worker_threads';
import { localArtifactFolder, type ArtifactStore } from '../data/artifact-store.js';
import { isErrorCode, MenagerieError } from '../core/errors.js';
import { threadSource } from '../core/thread-source.js';
import type { ModelBackbone } from '../plugin-api/plugin.js';
import type { ForwardResult, ServableVersion, ServedModel } from './served-model.js';

/** What the inference thread needs to load versions as the main thread would. */
export interface WorkerLoaderConfig {
  /** The workspace's config file: its plugins are registered beside the built-ins. */
  configFile?: string;
  /** Where backbones keep their converted graphs (`<dataDir>/cache`). */
  cacheDir: string;
}

/** A served model whose forward passes run on the inference thread. */
export interface WorkerModel extends Omit<ServedModel, 'forward'> {
  forward(pixels: readonly Uint8Array[]): Promise<ForwardResult>;
}

/**
 * One inference thread: loads versions there and runs their forward passes, so the
 * server's event loop keeps parsing requests and decoding images (on libuv's threads) while
 * TensorFlow computes. A thread that dies fails the requests it held with
 * INFERENCE_WORKER_FAILED, and the next request starts a new one, which reloads every model
 * not yet disposed.
 *
 * ```ts
 * const worker = createModelWorker({ cacheDir: '.menagerie/cache' });
 * const model = await worker.load(await registry.getModelVersion('faces', 3), workspace.artifacts);
 * const { probabilities } = await model.forward([await decodeToPixels(bytes, model.inputSpec)]);
 * model.dispose();
 * await worker.close();
 * ```
 */
export interface ModelWorker {
  /** Loads a version on the thread with `loadServedModel`'s checks. */
  load(version: ServableVersion, artifacts?: ArtifactStore): Promise<WorkerModel>;
  /** Requests posted to the thread and not yet answered. */
  inFlight(): number;
  /** Live tensors on the thread (`tf.memory().numTensors` there; 0 while none runs). */
  numTensors(): Promise<number>;
  /** How many times a thread was started (1 after the first load, more after deaths). */
  starts(): number;
  /**
   * Ends the thread as a crash would: what it held fails with INFERENCE_WORKER_FAILED and
   * the next request restarts it. For operators and tests.
   */
  terminateThread(): Promise<void>;
  /** Ends the thread; later calls reject. */
  close(): Promise<void>;
}

export type ThreadRequest =
  | { kind: 'load'; id: number; modelId: number; version: ServableVersion }
  | { kind: 'forward'; id: number; modelId: number; pixels: Uint8Array; count: number }
  | { kind: 'dispose'; modelId: number }
  | { kind: 'memory'; id: number };

export type ThreadReply =
  | { kind: 'loaded'; id: number; embeddingSize: number; backbone?: ModelBackbone }
  | {
      kind: 'forwarded';
      id: number;
      probabilities: Float32Array;
      embeddings: Float32Array;
      features?: Float32Array;
    }
  | { kind: 'memory'; id: number; numTensors: number }
  | { kind: 'failed'; id: number; code: string | null; message: string };

interface Waiting {
  resolve(reply: ThreadReply): void;
  reject(error: unknown): void;
}

const THREAD_ENTRY = new URL('./model-worker-thread.ts', import.meta.url).href;

export function createModelWorker(config: WorkerLoaderConfig): ModelWorker {
  let thread: Worker | null = null;
  let started = 0;
  let closed = false;
  let nextId = 1;
  const waiting = new Map<number, Waiting>();
  /** Models loaded and not disposed, reloaded by a restarted thread under the same id. */
  const live = new Map<number, ServableVersion>();

  function threadDied(dead: Worker, why: string): void {
    if (thread !== dead) return;
    thread = null;
    const error = new MenagerieError(
      'INFERENCE_WORKER_FAILED',
      `the inference thread ${why}; the next request restarts it`,
    );
    const held = [...waiting.values()];
    waiting.clear();
    for (const w of held) w.reject(error);
  }

  function ensureThread(): Worker {
    if (closed)
      throw new MenagerieError('INFERENCE_WORKER_FAILED', 'the inference thread is closed');
    if (thread) return thread;
    const worker = new Worker(threadSource(THREAD_ENTRY), { workerData: config });
    started++;
    thread = worker;
    worker.unref();
    worker.on('message', (reply: ThreadReply) => {
      const w = waiting.get(reply.id);
      if (!w) return;
      waiting.delete(reply.id);
      w.resolve(reply);
    });
    worker.on('error', (error) => threadDied(worker, `crashed: ${error.message}`));
    worker.on('exit', (code) => threadDied(worker, `exited with code ${code}`));
    // The models it served come back under the same ids, ahead of any forward pass.
    for (const [modelId, version] of live) {
      const id = nextId++;
      waiting.set(id, { resolve: () => undefined, reject: () => undefined });
      worker.postMessage({ kind: 'load', id, modelId, version } satisfies ThreadRequest);
    }
    return worker;
  }

  function call(request: ThreadRequest & { id: number }, transfer: ArrayBuffer[] = []) {
    const worker = ensureThread();
    return new Promise<ThreadReply>((resolve, reject) => {
      waiting.set(request.id, { resolve, reject });
      worker.postMessage(request, transfer);
    }).then((reply) => {
      if (reply.kind !== 'failed') return reply;
      throw isErrorCode(reply.code)
        ? new MenagerieError(reply.code, reply.message)
        : new Error(reply.message);
    });
  }

  return {
    async load(version, artifacts) {
      // Remote artifacts are fetched here, through the workspace's read-through cache.
      const source = await localArtifactFolder(version.source, artifacts);
      const local: ServableVersion = {
        name: version.name,
        version: version.version,
        source,
        labels: [...version.labels],
        inputSpec: { ...version.inputSpec },
      };
      const modelId = nextId++;
      const reply = await call({ kind: 'load', id: nextId++, modelId, version: local });
      if (reply.kind !== 'loaded') throw new Error(`unexpected reply '${reply.kind}' to a load`);
      live.set(modelId, local);
      const { embeddingSize, backbone } = reply;
      const k = local.labels.length;
      let disposed = false;
      return {
        ref: { name: local.name, version: local.version },
        labels: local.labels,
        inputSpec: local.inputSpec,
        embeddingSize,
        ...(backbone && { backbone }),
        async forward(pixels) {
          if (pixels.length === 0) return { probabilities: [], embeddings: [] };
          const each = pixels[0]!.length;
          const packed = new Uint8Array(each * pixels.length);
          pixels.forEach((p, i) => packed.set(p, i * each));
          const out = await call(
            { kind: 'forward', id: nextId++, modelId, pixels: packed, count: pixels.length },
            [packed.buffer],
          );
          if (out.kind !== 'forwarded') throw new Error(`unexpected reply '${out.kind}' to a pass`);
          const rows = (flat: Float32Array, n: number) =>
            pixels.map((_, i) => flat.slice(i * n, (i + 1) * n));
          return {
            probabilities: rows(out.probabilities, k),
            embeddings: rows(out.embeddings, embeddingSize),
            ...(out.features && backbone && { features: rows(out.features, backbone.featureSize) }),
          };
        },
        dispose() {
          if (disposed) return;
          disposed = true;
          live.delete(modelId);
          thread?.postMessage({ kind: 'dispose', modelId } satisfies ThreadRequest);
        },
      };
    },
    inFlight: () => waiting.size,
    async numTensors() {
      if (!thread) return 0;
      const reply = await call({ kind: 'memory', id: nextId++ });
      if (reply.kind !== 'memory') throw new Error(`unexpected reply '${reply.kind}'`);
      return reply.numTensors;
    },
    starts: () => started,
    async terminateThread() {
      const worker = thread;
      if (!worker) return;
      threadDied(worker, 'was ended');
      await worker.terminate();
    },
    async close() {
      closed = true;
      const worker = thread;
      if (worker) {
        threadDied(worker, 'was closed');
        await worker.terminate();
      }
    },
  };
}
