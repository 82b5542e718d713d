import { MenagerieError } from '../core/errors.js';
import { decodeToPixels, prepareDecoder } from '../data/preprocess.js';
import type { ForwardResult, ServedModel, VersionRef } from './served-model.js';

export type { VersionRef } from './served-model.js';

/**
 * A model the engine serves: a ServedModel, or one whose passes run elsewhere and answer
 * later (the inference thread's `WorkerModel`). One pass runs at a time per model; images
 * arriving meanwhile queue for the next pass.
 */
export interface EngineModel extends Omit<ServedModel, 'forward'> {
  forward(pixels: readonly Uint8Array[]): ForwardResult | Promise<ForwardResult>;
}

export interface InferenceEngineOptions {
  /** The version to serve (the registry's champion), or null when there is none. */
  resolveChampion(): Promise<VersionRef | null>;
  /** Loads a version; the engine warms it up and disposes it after its last request. */
  loadVersion(ref: VersionRef): Promise<EngineModel>;
  /** Most images in one forward pass (default 32). */
  maxBatch?: number;
  /** How long the first queued image waits for others before its pass runs (default 2 ms). */
  maxWaitMs?: number;
  /** Below this confidence a prediction is flagged `uncertain` (default 0.5). */
  uncertaintyThreshold?: number;
  /** Checks for a new champion this often; 0 (default) only on `refresh()`. */
  pollIntervalMs?: number;
  /** Told about every failed load (the engine goes on serving the model it had). */
  onError?(error: unknown): void;
}

export interface ClassProbability {
  label: string;
  p: number;
}

export interface Prediction {
  /** The most probable class, returned even when `uncertain`. */
  label: string;
  confidence: number;
  /** Every class, most probable first. */
  probabilities: ClassProbability[];
  /** `confidence` is below the engine's uncertainty threshold. */
  uncertain: boolean;
  /** The version that answered. */
  modelVersion: VersionRef;
  /** From the call to the answer: decode, queueing and the forward pass. */
  latencyMs: number;
  /** The L2-normalised embedding, when asked for with `{ embedding: true }`. */
  embedding?: Float32Array;
}

export interface EngineStatus {
  serving: VersionRef | null;
  /** A new champion is being loaded and warmed. */
  loading: boolean;
  /** The last failed load (cleared by a successful one). */
  lastError: {
    message: string;
    code: string | null;
    at: number;
    version: VersionRef | null;
  } | null;
  /** Replaced models still finishing their requests. */
  retiring: VersionRef[];
}

export interface EngineStats {
  predictions: number;
  forwardPasses: number;
  /** Images per forward pass, largest seen. */
  largestBatch: number;
}

export interface RefreshResult {
  changed: boolean;
  serving: VersionRef | null;
}

/**
 * Serves the champion: micro-batched predictions with exactly the preprocessing the model
 * was trained with, hot swaps when the champion moves.
 */
export interface InferenceEngine {
  /**
   * Classifies one image. Bad bytes reject with IMAGE_EMPTY or IMAGE_UNREADABLE; no model
   * with MODEL_NOT_SERVING. Concurrent calls share forward passes.
   */
  predict(bytes: Uint8Array, options?: { embedding?: boolean }): Promise<Prediction>;
  /** Classifies several images; rejects naming the first image that does not decode. */
  predictBatch(
    images: readonly Uint8Array[],
    options?: { embedding?: boolean },
  ): Promise<Prediction[]>;
  /** The image's L2-normalised embedding from the serving model (same pass as predict). */
  embed(bytes: Uint8Array): Promise<{ embedding: Float32Array; modelVersion: VersionRef }>;
  /**
   * Loads the champion if it changed, warms it and swaps it in; requests already started
   * finish on the old model, disposed after the last of them. A failed load rejects, and
   * the engine keeps serving what it had. Champion removed: the last one keeps serving.
   */
  refresh(): Promise<RefreshResult>;
  status(): EngineStatus;
  stats(): EngineStats;
  /** Stops polling; the model is disposed once requests in flight finish. */
  close(): Promise<void>;
}

interface Pending {
  pixels: Uint8Array;
  resolve(result: { probabilities: Float32Array; embedding: Float32Array }): void;
  reject(error: unknown): void;
}

/** One loaded model, its lease count and its queue of images waiting for a pass. */
interface Slot {
  model: EngineModel;
  /** A pass is running (asynchronous models): the next one waits for it. */
  busy: boolean;
  leases: number;
  retired: boolean;
  /** Requests still decoding: they may join the next pass, so it is worth waiting for them. */
  decoding: number;
  queue: Pending[];
  timer: NodeJS.Timeout | null;
}

/**
 * Creates an engine and loads the current champion (a missing champion or a failed load
 * is reported by `status()` and by MODEL_NOT_SERVING from `predict`, not thrown here).
 *
 * ```ts
 * import { createInferenceEngine } from './serving/inference-engine.js';
 * import { followChampion } from './serving/registry-champion.js';
 *
 * const engine = await createInferenceEngine({ ...followChampion(registry, workspace.plugins, 'faces'), pollIntervalMs: 5000 });
 * const { label, confidence, modelVersion } = await engine.predict(await fs.readFile('cat.jpg'));
 * await registry.promoteChampion('faces', 4);
 * await engine.refresh(); // next predictions answer from version 4, none dropped
 * ```
 */
export async function createInferenceEngine(
  options: InferenceEngineOptions,
): Promise<InferenceEngine> {
  const maxBatch = options.maxBatch ?? 32;
  const maxWaitMs = options.maxWaitMs ?? 2;
  const threshold = options.uncertaintyThreshold ?? 0.5;
  if (!Number.isInteger(maxBatch) || maxBatch < 1)
    throw new MenagerieError(
      'CONFIG_INVALID',
      `maxBatch should be a whole number ≥ 1, got ${maxBatch}`,
    );
  if (!(maxWaitMs >= 0))
    throw new MenagerieError('CONFIG_INVALID', `maxWaitMs should be ≥ 0, got ${maxWaitMs}`);

  let current: Slot | null = null;
  const retiring = new Set<Slot>();
  let refreshing: Promise<RefreshResult> = Promise.resolve({ changed: false, serving: null });
  let loading = false;
  let closed = false;
  let lastError: EngineStatus['lastError'] = null;
  /** A version whose load failed: polling does not retry it, an explicit refresh does. */
  let failedRef: VersionRef | null = null;
  const stats: EngineStats = { predictions: 0, forwardPasses: 0, largestBatch: 0 };

  function acquire(): Slot {
    if (!current) {
      const why = closed
        ? 'the engine is closed'
        : lastError
          ? `loading the champion failed: ${lastError.message}`
          : 'the registered model has no champion; promote a READY version';
      throw new MenagerieError('MODEL_NOT_SERVING', `no model is serving: ${why}`);
    }
    current.leases++;
    return current;
  }

  function release(slot: Slot): void {
    slot.leases--;
    if (slot.retired && slot.leases === 0) {
      retiring.delete(slot);
      slot.model.dispose();
    }
  }

  function retire(slot: Slot): void {
    slot.retired = true;
    retiring.add(slot);
    // Drops the lease being current held; requests still queued hold their own.
    release(slot);
  }

  function flush(slot: Slot): void {
    if (slot.timer) clearTimeout(slot.timer);
    slot.timer = null;
    if (slot.busy) return; // the running pass flushes again when it ends
    const batch = slot.queue.splice(0, maxBatch);
    if (batch.length === 0) return;
    const answer = (out: ForwardResult) => {
      stats.forwardPasses++;
      stats.largestBatch = Math.max(stats.largestBatch, batch.length);
      batch.forEach((p, i) =>
        p.resolve({ probabilities: out.probabilities[i]!, embedding: out.embeddings[i]! }),
      );
    };
    const fail = (error: unknown) => {
      for (const p of batch) p.reject(error);
    };
    let out: ForwardResult | Promise<ForwardResult>;
    try {
      out = slot.model.forward(batch.map((p) => p.pixels));
    } catch (error) {
      out = Promise.reject(error);
    }
    if (out instanceof Promise) {
      // Images that arrived during the pass go next, together, without waiting.
      slot.busy = true;
      void out.then(answer, fail).finally(() => {
        slot.busy = false;
        if (slot.queue.length > 0) flush(slot);
      });
      return;
    }
    if (slot.queue.length > 0) slot.timer = setTimeout(() => flush(slot), 0);
    answer(out);
  }

  function enqueue(slot: Slot, pixels: Uint8Array) {
    return new Promise<{ probabilities: Float32Array; embedding: Float32Array }>(
      (resolve, reject) => {
        slot.queue.push({ pixels, resolve, reject });
        if (slot.queue.length >= maxBatch) flush(slot);
        // Nobody else is on the way: a lone request does not wait out maxWaitMs.
        else if (slot.decoding === 0) setImmediate(() => flush(slot));
        else slot.timer ??= setTimeout(() => flush(slot), maxWaitMs);
      },
    );
  }

  function toPrediction(
    slot: Slot,
    out: { probabilities: Float32Array; embedding: Float32Array },
    started: number,
    withEmbedding: boolean,
  ): Prediction {
    const probabilities = slot.model.labels
      .map((label, i) => ({ label, p: out.probabilities[i] ?? 0 }))
      .sort((a, b) => b.p - a.p);
    const best = probabilities[0]!;
    stats.predictions++;
    return {
      label: best.label,
      confidence: best.p,
      probabilities,
      uncertain: best.p < threshold,
      modelVersion: { ...slot.model.ref },
      latencyMs: performance.now() - started,
      ...(withEmbedding && { embedding: out.embedding }),
    };
  }

  async function predictMany(
    images: readonly Uint8Array[],
    withEmbedding: boolean,
    name: (i: number) => string,
  ): Promise<Prediction[]> {
    const started = performance.now();
    images.forEach((bytes, i) => {
      if (bytes.length === 0)
        throw new MenagerieError('IMAGE_EMPTY', `${name(i)} is empty (0 bytes)`);
    });
    const slot = acquire();
    try {
      slot.decoding += images.length;
      const pixels = await Promise.all(
        images.map((bytes, i) =>
          decodeToPixels(bytes, slot.model.inputSpec, name(i)).finally(() => slot.decoding--),
        ),
      );
      const outs = await Promise.all(pixels.map((p) => enqueue(slot, p)));
      return outs.map((out) => toPrediction(slot, out, started, withEmbedding));
    } finally {
      release(slot);
    }
  }

  const sameRef = (a: VersionRef | null, b: VersionRef | null) =>
    a !== null && b !== null && a.name === b.name && a.version === b.version;

  async function load(polled: boolean): Promise<RefreshResult> {
    if (closed) return { changed: false, serving: null };
    let ref: VersionRef | null = null;
    try {
      ref = await options.resolveChampion();
      const serving = current?.model.ref ?? null;
      if (ref === null || sameRef(ref, serving) || (polled && sameRef(ref, failedRef)))
        return { changed: false, serving };
      loading = true;
      const model = await options.loadVersion(ref);
      try {
        // Warm-up: the first pass builds kernels and allocates, and the decoder's processes
        // start; no request should pay for either.
        const { size } = model.inputSpec;
        await prepareDecoder(model.inputSpec);
        await model.forward([new Uint8Array(size * size * 3)]);
      } catch (error) {
        model.dispose();
        throw error;
      }
      if (closed) {
        model.dispose();
        return { changed: false, serving: null };
      }
      const previous = current;
      current = {
        model,
        busy: false,
        leases: 1,
        retired: false,
        decoding: 0,
        queue: [],
        timer: null,
      };
      if (previous) retire(previous);
      lastError = null;
      failedRef = null;
      return { changed: true, serving: { ...model.ref } };
    } catch (error) {
      failedRef = ref;
      lastError = {
        message: error instanceof Error ? error.message : String(error),
        code: error instanceof MenagerieError ? error.code : null,
        at: Date.now(),
        version: ref,
      };
      options.onError?.(error);
      throw error;
    } finally {
      loading = false;
    }
  }

  /** One load at a time, in call order, so two refreshes never race to swap. */
  function refresh(polled = false): Promise<RefreshResult> {
    const next = refreshing.catch(() => undefined).then(() => load(polled));
    refreshing = next;
    return next;
  }

  await refresh().catch(() => undefined);
  const poll =
    options.pollIntervalMs && options.pollIntervalMs > 0
      ? setInterval(() => void refresh(true).catch(() => undefined), options.pollIntervalMs)
      : null;
  poll?.unref();

  return {
    async predict(bytes, predictOptions = {}) {
      const [prediction] = await predictMany(
        [bytes],
        predictOptions.embedding ?? false,
        () => 'image',
      );
      return prediction!;
    },
    predictBatch(images, predictOptions = {}) {
      return predictMany(images, predictOptions.embedding ?? false, (i) => `image ${i}`);
    },
    async embed(bytes) {
      const [p] = await predictMany([bytes], true, () => 'image');
      return { embedding: p!.embedding!, modelVersion: p!.modelVersion };
    },
    refresh: () => refresh(false),
    status: () => ({
      serving: current ? { ...current.model.ref } : null,
      loading,
      lastError,
      retiring: [...retiring].map((s) => ({ ...s.model.ref })),
    }),
    stats: () => ({ ...stats }),
    async close() {
      if (poll) clearInterval(poll);
      closed = true;
      await refreshing.catch(() => undefined);
      const slot = current;
      current = null;
      if (slot) retire(slot);
    },
  };
}
