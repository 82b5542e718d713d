import type { BlobStore } from '../data/blob-store.js';
import type { OpenDatabase } from '../data/database.js';
import type { CatalogImage } from '../data/image-catalog.js';
import type { ImageService, ImageStats, LabelSummary } from '../data/image-service.js';
import type { PluginRegistry } from '../plugin-api/plugin-registry.js';
import type { ModelRegistry } from '../registry/model-registry.js';
import type { RunProgressUpdate } from '../jobs/run-progress.js';
import type { EvaluationProgressUpdate } from '../jobs/evaluation-progress.js';
import type { ModelEvaluations } from '../registry/model-evaluations.js';
import type { TrackingStore } from '../tracking/tracking-store.js';
import type { ModelServing } from '../serving/model-serving.js';
import type { PredictionService } from '../serving/prediction-service.js';
import type { IngestService } from '../jobs/ingest-service.js';
import type { JobRunner } from '../jobs/job-runner.js';
import type { Deadline } from '../core/deadline.js';
import type { EventHub } from '../core/event-hub.js';

/** Token roles, each allowed what the ones before it are: read < write < admin. */
export const ROLES = ['read', 'write', 'admin'] as const;
export type Role = (typeof ROLES)[number];

/** Topics carried to subscribers. Add a topic here and publish it from a service. */
export interface MenagerieEvents {
  imageAdded: CatalogImage;
  /** Training and tuning jobs' progress, from jobs/job-runner.ts. */
  runProgress: RunProgressUpdate;
  /** Evaluation jobs' progress, from jobs/job-runner.ts. */
  evaluationProgress: EvaluationProgressUpdate;
  /**
   * A replica moved a registered model's champion (promoteChampion): the others swap it in.
   * Carried between replicas by a Redis hub; `replica` says who sent it.
   */
  championMoved: { model: string; replica: string };
}

/**
 * What resolvers call. Resolvers translate between GraphQL and these; the services
 * decide. Later parts add theirs here (tracking store, model registry, inference engine)
 * and pass them to createServer.
 */
export interface MenagerieServices {
  database: OpenDatabase;
  blobs: BlobStore;
  images: ImageService;
  events: EventHub<MenagerieEvents>;
  plugins: PluginRegistry;
  /** Experiments, runs and their artifacts. */
  tracking: TrackingStore;
  registry: ModelRegistry;
  /** Evaluations of model versions (the job runner computes them in child processes). */
  evaluations: ModelEvaluations;
  /** The champion of the served model: inference engine, readiness, embeddings. */
  serving: ModelServing;
  predictions: PredictionService;
  /** Training, tuning and evaluation in child processes. */
  jobs: JobRunner;
  /** Ingest confined to the configured roots. */
  ingest: IngestService;
}

/** The context every resolver receives, over HTTP and over WebSocket alike. */
export interface GraphQLContext {
  services: MenagerieServices;
  /** The role of the caller's bearer token; null when it sent none. */
  role: Role | null;
  /** The server refuses every mutation but public ones (predict). */
  readOnly: boolean;
  requestId: string;
  /** Per-request caches, so a page of 1,000 images reads the labels once. */
  loaders: RequestLoaders;
  /**
   * When a query must be answered by: past it, resolvers are not started and the request
   * answers REQUEST_TIMEOUT (server/query-deadline.ts). A long resolver may watch
   * `deadline.signal`. Absent: no deadline.
   */
  deadline?: Deadline;
}

/** Work a request does at most once, however many fields (or aliases) ask for it. */
export interface RequestLoaders {
  labelsById(): Promise<Map<number, LabelSummary>>;
  /** Three scans of `images`: asked for by 10 aliases, done once. */
  imageStats(): Promise<ImageStats>;
}

export function createRequestLoaders(services: MenagerieServices): RequestLoaders {
  let labels: Promise<Map<number, LabelSummary>> | undefined;
  let stats: Promise<ImageStats> | undefined;
  return {
    labelsById: () =>
      (labels ??= services.images.labels().then((all) => new Map(all.map((l) => [l.id, l])))),
    imageStats: () => (stats ??= services.images.stats()),
  };
}
