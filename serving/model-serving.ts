import path from 'node:path';
import type { ChildProcess } from 'node:child_process';
import type { ArtifactStore } from '../data/artifact-store.js';
import type { OpenDatabase } from '../data/database.js';
import { isMenagerieError } from '../core/errors.js';
import type { BlobStore } from '../data/blob-store.js';
import type { PluginRegistry } from '../plugin-api/plugin-registry.js';
import type { BackboneLoader } from '../training/backbone-loader.js';
import type { ModelRegistry } from '../registry/model-registry.js';
import { failStaleEmbeddingJobs, startEmbeddingJob } from './embedding-job.js';
import { createInferenceEngine, type InferenceEngine } from './inference-engine.js';
import { createModelWorker } from './model-worker.js';
import { followChampion } from './registry-champion.js';
import type { VersionRef } from './served-model.js';
import {
  DEFAULT_SIMILARITY_BACKBONE,
  featureSpaceQueries,
  startFeatureSpaceJob,
  type FeatureSpaceQueries,
} from './feature-space.js';
import { findSimilar, type SimilarResult, type SimilarSpace } from './similar-images.js';

/** The registered model a server follows when none is configured. */
export const DEFAULT_SERVING_MODEL = 'faces';

export interface ModelServingOptions {
  database: OpenDatabase;
  /** For `menagerie embed` child processes. */
  dataDir: string;
  registry: ModelRegistry;
  plugins: PluginRegistry;
  /** The workspace's artifact store, for versions saved in a remote one (S3). */
  artifacts?: ArtifactStore;
  /** Image bytes, for the feature space's projection and catalogue images. */
  blobs: BlobStore;
  /** Backbones of transfer models, shared with the rest of the process. */
  backbones: BackboneLoader;
  /** Serve `models:/<modelName>@champion`. */
  modelName: string;
  /** How often a champion moved outside this process (the CLI) is picked up (default 5 s). */
  pollIntervalMs?: number;
  /** Start `menagerie embed` for every version registered or served (default true). */
  computeEmbeddings?: boolean;
  /**
   * The backbone of the feature space similar images search by default (default
   * `menagerie:mobilenet_v2_140`); null: none, the serving version's embeddings answer.
   */
  similarBackbone?: string | null;
  /** How long after the last added image the feature space takes new ones in (30 s). */
  featureRefreshMs?: number;
  uncertaintyThreshold?: number;
  /**
   * Run forward passes on an inference thread, so TensorFlow never blocks the event loop
   * (default true; `MENAGERIE_INFERENCE_THREAD=main` turns it off).
   */
  inferenceWorker?: boolean;
  /** The workspace's config file, whose model plugins the inference thread registers too. */
  configFile?: string;
  /** Told about failed loads and failed embedding starts; serving goes on. */
  onError?(error: unknown): void;
}

export interface ServingInfo {
  model: VersionRef | null;
  labels: string[];
  /** When the serving version finished loading (ms since the epoch). */
  loadedAt: number | null;
}

/**
 * The champion of one registered model, served: an inference engine following
 * `models:/<name>@champion`, readiness, and the embeddings similar-image search needs.
 *
 * ```ts
 * const serving = await createModelServing({ database, dataDir, registry, plugins, modelName: 'faces' });
 * await registry.promoteChampion('faces', 4);
 * await serving.championMoved('faces'); // the next predict answers from version 4
 * ```
 */
export interface ModelServing {
  readonly modelName: string;
  readonly engine: InferenceEngine;
  info(): Promise<ServingInfo>;
  /**
   * Resolves when the server can answer as configured: a model is serving, or the
   * registry has no champion to serve. Rejects, saying why, while a champion exists but
   * is not (yet) loaded. A hot swap keeps the old model serving, so it never flaps.
   */
  checkReady(): Promise<void>;
  /** After a change that may have moved `name`'s champion: swap it in, start its embeddings. */
  championMoved(name: string): Promise<void>;
  /** Starts `menagerie embed` for a version unless its embeddings are READY or running. */
  ensureEmbeddings(ref: VersionRef): Promise<void>;
  /** Queries in the pretrained backbone's feature space (similar images); null when off. */
  readonly features: FeatureSpaceQueries | null;
  /** Starts `menagerie embed --features` when the feature space lacks catalogue images. */
  ensureFeatureSpace(): Promise<void>;
  /**
   * Images joined the catalogue (an upload, feedback, an ingest): once additions settle
   * (`featureRefreshMs`, 30 s, without another), the feature-space job takes the new ones in.
   */
  imagesAdded(): void;
  /**
   * Images like an image already in the catalogue, in the space asked for (the backbone's
   * feature space, or the serving version's embedding space), falling back to the other and
   * then to random images of its label, saying which answered.
   */
  similarToImage(
    imageId: number,
    options: { k: number; sameLabel: boolean; space: SimilarSpace },
  ): Promise<SimilarResult>;
  /** Tensors held on the inference thread (0 when passes run on the main thread). */
  inferenceTensors(): Promise<number>;
  /** Stops polling, kills embedding children started here (a rerun resumes them). */
  close(): Promise<void>;
}

/** How long after the last added image the feature space is brought up to date. */
export const FEATURE_REFRESH_MS = 30_000;

export async function createModelServing(options: ModelServingOptions): Promise<ModelServing> {
  const { database, registry, modelName } = options;
  const computeEmbeddings = options.computeEmbeddings ?? true;
  const reportError = (error: unknown) => options.onError?.(error);
  const children = new Map<ChildProcess, Promise<unknown>>();
  const loadedAt = new Map<string, number>();
  const key = (ref: VersionRef) => `${ref.name}/${ref.version}`;
  let closed = false;
  let refreshTimer: NodeJS.Timeout | undefined;

  await failStaleEmbeddingJobs(database.db);

  /** Versions whose job this process is starting or running: never spawn two for one. */
  const started = new Set<string>();

  async function ensureEmbeddings(ref: VersionRef): Promise<void> {
    if (!computeEmbeddings || closed || started.has(key(ref))) return;
    started.add(key(ref));
    let child: ChildProcess | undefined;
    try {
      const job = await startEmbeddingJob({ database, dataDir: options.dataDir }, ref, {
        // Serving shares the CPU with the job: leave it room between batches.
        pauseMs: 5,
      });
      if (!job) return;
      child = job.child;
      const finished = job.finished.catch(reportError).finally(() => {
        children.delete(job.child);
        started.delete(key(ref));
      });
      children.set(job.child, finished);
    } catch (error) {
      // Already running elsewhere is fine: that process finishes it.
      if (!isMenagerieError(error, 'EMBEDDING_JOB_RUNNING')) reportError(error);
    } finally {
      if (!child) started.delete(key(ref));
    }
  }

  const similarBackbone =
    options.similarBackbone === undefined ? DEFAULT_SIMILARITY_BACKBONE : options.similarBackbone;
  const features =
    similarBackbone === null
      ? null
      : featureSpaceQueries(
          {
            database,
            blobs: options.blobs,
            backbones: options.backbones,
            cacheDir: path.join(options.dataDir, 'cache'),
          },
          { backbone: similarBackbone },
        );
  const champion = followChampion(registry, options, modelName);
  const useWorker =
    options.inferenceWorker ?? process.env.MENAGERIE_INFERENCE_THREAD?.toLowerCase() !== 'main';
  const worker = useWorker
    ? createModelWorker({
        cacheDir: path.join(options.dataDir, 'cache'),
        ...(options.configFile !== undefined && { configFile: options.configFile }),
      })
    : null;
  const engine = await createInferenceEngine({
    resolveChampion: champion.resolveChampion,
    async loadVersion(ref) {
      const model = worker
        ? await worker.load(
            await registry.getModelVersion(ref.name, ref.version),
            options.artifacts,
          )
        : await champion.loadVersion(ref);
      loadedAt.set(key(ref), Date.now());
      void ensureEmbeddings(ref);
      return model;
    },
    pollIntervalMs: options.pollIntervalMs ?? 5000,
    ...(options.uncertaintyThreshold !== undefined && {
      uncertaintyThreshold: options.uncertaintyThreshold,
    }),
    onError: reportError,
  });

  const serving: ModelServing = {
    modelName,
    engine,
    async info() {
      const ref = engine.status().serving;
      if (!ref) return { model: null, labels: [], loadedAt: null };
      const version = await registry.getModelVersion(ref.name, ref.version).catch(() => null);
      return {
        model: ref,
        labels: version?.labels ?? [],
        loadedAt: loadedAt.get(key(ref)) ?? null,
      };
    },
    async checkReady() {
      const status = engine.status();
      if (status.serving) return;
      const wanted = await champion.resolveChampion();
      if (wanted === null) return;
      const what = `${wanted.name} version ${wanted.version}`;
      if (status.loading) throw new Error(`loading the champion, ${what}`);
      throw new Error(
        `the champion ${what} is not loaded` +
          (status.lastError ? `: ${status.lastError.message}` : ''),
      );
    },
    async championMoved(name) {
      if (name !== modelName) return;
      // A failed load is reported by status() and MODEL_NOT_SERVING; the old model serves on.
      await engine.refresh().catch(() => undefined);
    },
    ensureEmbeddings,
    features,
    async ensureFeatureSpace() {
      if (options.computeEmbeddings === false || similarBackbone === null || closed) return;
      try {
        const job = await startFeatureSpaceJob(
          { database, dataDir: options.dataDir },
          { backbone: similarBackbone },
        );
        if (!job) return;
        const finished = job.finished
          .then(() => undefined, reportError)
          .finally(() => children.delete(job.child));
        children.set(job.child, finished);
      } catch (error) {
        if (!isMenagerieError(error, 'EMBEDDING_JOB_RUNNING')) reportError(error);
      }
    },
    imagesAdded() {
      if (options.computeEmbeddings === false || similarBackbone === null || closed) return;
      clearTimeout(refreshTimer);
      refreshTimer = setTimeout(
        () => void serving.ensureFeatureSpace(),
        options.featureRefreshMs ?? FEATURE_REFRESH_MS,
      );
      refreshTimer.unref();
    },
    similarToImage(imageId, { k, sameLabel, space }) {
      const ref = engine.status().serving;
      return findSimilar(
        { database, features },
        { space, imageId, k, sameLabel, ...(ref && { version: ref }) },
      );
    },
    inferenceTensors: async () => (worker ? worker.numTensors() : 0),
    async close() {
      closed = true;
      clearTimeout(refreshTimer);
      await engine.close();
      await worker?.close();
      for (const child of children.keys()) child.kill('SIGTERM');
      await Promise.all(children.values());
    },
  };
  // The catalogue in the pretrained feature space, for similar images (a child process).
  void serving.ensureFeatureSpace();
  return serving;
}
