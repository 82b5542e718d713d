import type { Kysely } from 'kysely';
import { localArtifactStore, type ArtifactStore } from '../data/artifact-store.js';
import type { Database, RunStatus } from '../data/tables.js';
import {
  createExperiment,
  getExperiment,
  getExperimentByName,
  getOrCreateExperiment,
  listExperiments,
  setExperimentLifecycle,
  setExperimentTag,
  type CreateExperimentOptions,
  type Experiment,
  type ListExperimentsOptions,
} from './experiments.js';
import {
  listArtifacts,
  logArtifact,
  readArtifact,
  runArtifactDir,
  uploadRunArtifacts,
  type ArtifactEntry,
} from './run-artifacts.js';
import {
  getMetricHistory,
  logMetric,
  logMetrics,
  logParams,
  setTag,
  type LogMetricsOptions,
  type Metric,
  type MetricInput,
  type ParamValue,
} from './run-data.js';
import type { RunSearch } from './run-search.js';
import {
  createRun,
  endRun,
  getRun,
  heartbeat,
  keepAlive,
  listChildRuns,
  resumeRun,
  searchRuns,
  setRunLifecycle,
  type CreateRunOptions,
  type Run,
} from './runs.js';

export type {
  ArtifactEntry,
  CreateExperimentOptions,
  CreateRunOptions,
  Experiment,
  ListExperimentsOptions,
  LogMetricsOptions,
  Metric,
  MetricInput,
  ParamValue,
  Run,
};

/**
 * Experiment tracking with MLflow's semantics, on the Menagerie database: experiments
 * (soft delete), runs with params (immutable), metric history, tags and artifacts.
 * Params, metrics and artifacts are refused once a run has ended; tags are annotations and
 * may still be set, as in MLflow.
 *
 * ```ts
 * import { openDatabase } from './data/database.js';
 * import { createTrackingStore } from './tracking/tracking-store.js';
 * const { db } = await openDatabase('.menagerie/menagerie.db');
 * const store = createTrackingStore({ db, artifactRoot: '.menagerie/artifacts' }); // or { db, artifacts }
 * const experiment = await store.getOrCreateExperiment('faces');
 * const run = await store.createRun({ experimentId: experiment.id, tags: { team: 'x' } });
 * await store.logParams(run.id, { optimizer: 'adam', lr: 0.001 });
 * await store.logMetrics(run.id, { loss: 0.4, val_accuracy: 0.91 }, { step: 1 });
 * await store.endRun(run.id, 'FINISHED');
 * const { runs } = await store.searchRuns({ filter: 'metrics.val_accuracy > 0.9' });
 * ```
 */
export interface TrackingStore {
  createExperiment(name: string, options?: CreateExperimentOptions): Promise<Experiment>;
  /** Throws EXPERIMENT_NOT_FOUND. */
  getExperiment(id: number): Promise<Experiment>;
  /** Deleted experiments included; undefined when none has the name (as MLflow). */
  getExperimentByName(name: string): Promise<Experiment | undefined>;
  /** The active experiment of that name, created if missing; safe against a concurrent creator. */
  getOrCreateExperiment(name: string): Promise<Experiment>;
  listExperiments(options?: ListExperimentsOptions): Promise<Experiment[]>;
  /** Soft delete: its runs leave searches until it is restored. */
  deleteExperiment(id: number): Promise<void>;
  restoreExperiment(id: number): Promise<void>;
  setExperimentTag(id: number, key: string, value: string): Promise<void>;

  /** Starts a RUNNING run owned by this process; without a name it gets one like `brave-otter-42`. */
  createRun(options: CreateRunOptions): Promise<Run>;
  /** Deleted runs included. Throws RUN_NOT_FOUND. */
  getRun(runId: string): Promise<Run>;
  /** Logging a logged key again with the same value is a no-op; another value is PARAM_CONFLICT. */
  logParams(runId: string, params: Record<string, ParamValue>): Promise<void>;
  logMetric(
    runId: string,
    key: string,
    value: number,
    step?: number,
    timestamp?: number,
  ): Promise<void>;
  /** Many metrics in one transaction; `options` supplies the step and timestamp of a record. */
  logMetrics(
    runId: string,
    metrics: Record<string, number> | readonly MetricInput[],
    options?: LogMetricsOptions,
  ): Promise<void>;
  /** Every value logged, by step then time. */
  getMetricHistory(runId: string, key: string): Promise<Metric[]>;
  setTag(runId: string, key: string, value: string): Promise<void>;
  /** Ends a RUNNING run; RUN_NOT_ACTIVE if it already ended (or a later start marked it FAILED). */
  endRun(runId: string, status?: Exclude<RunStatus, 'RUNNING'>, endTime?: number): Promise<void>;
  /** Proves the owner alive, for runs watched from another host (see stale-runs.ts). */
  heartbeat(runId: string): Promise<void>;
  /** Calls `heartbeat` every `intervalMs` until the returned function is called. */
  keepAlive(runId: string, intervalMs?: number): () => void;
  deleteRun(runId: string): Promise<void>;
  restoreRun(runId: string): Promise<void>;
  /**
   * Reopens an ended run as RUNNING, owned by this process (MLflow's `start_run(run_id=…)`):
   * how a killed tuning run continues under the same id. Refused for deleted runs.
   */
  resumeRun(runId: string): Promise<void>;
  /** Trials of a tuning run, oldest first. */
  listChildRuns(parentRunId: string): Promise<Run[]>;
  searchRuns(search?: RunSearch): Promise<{ runs: Run[]; nextPageToken: string | null }>;

  /** Copies a file or folder into `<artifact folder>/<artifactPath>/`; returns its artifact path. */
  logArtifact(runId: string, localPath: string, artifactPath?: string): Promise<string>;
  /** The entries of one artifact folder (the root by default), not recursive. */
  listArtifacts(runId: string, artifactPath?: string): Promise<ArtifactEntry[]>;
  /** One artifact file's bytes (`model/confusion_matrix.png`), or null when missing. */
  readArtifact(runId: string, artifactPath: string): Promise<Buffer | null>;
  /**
   * A local folder of the run's artifacts, up to date with the store: the folder itself
   * on a local store, a read-through cache copy on a remote one. Whoever writes into it
   * calls `uploadArtifacts` afterwards (at each checkpoint, at the end).
   */
  artifactPath(runId: string): Promise<string>;
  /** Sends what was written into `artifactPath(runId)` to the artifact store. */
  uploadArtifacts(runId: string): Promise<void>;
}

export function createTrackingStore(
  options: { db: Kysely<Database> } & (
    | { artifacts: ArtifactStore }
    /** Shorthand for a local store of `file://` folders under this root. */
    | { artifactRoot: string }
  ),
): TrackingStore {
  const { db } = options;
  const artifacts =
    'artifacts' in options ? options.artifacts : localArtifactStore(options.artifactRoot);
  return {
    createExperiment: (name, details) => createExperiment(db, name, details),
    getExperiment: (id) => getExperiment(db, id),
    getExperimentByName: (name) => getExperimentByName(db, name),
    getOrCreateExperiment: (name) => getOrCreateExperiment(db, name),
    listExperiments: (filter) => listExperiments(db, filter),
    deleteExperiment: (id) => setExperimentLifecycle(db, id, 'deleted'),
    restoreExperiment: (id) => setExperimentLifecycle(db, id, 'active'),
    setExperimentTag: (id, key, value) => setExperimentTag(db, id, key, value),

    createRun: (run) => createRun(db, artifacts, run),
    getRun: (runId) => getRun(db, runId),
    logParams: (runId, params) => logParams(db, runId, params),
    logMetric: (runId, key, value, step, timestamp) =>
      logMetric(db, runId, key, value, step, timestamp),
    logMetrics: (runId, metrics, defaults) => logMetrics(db, runId, metrics, defaults),
    getMetricHistory: (runId, key) => getMetricHistory(db, runId, key),
    setTag: (runId, key, value) => setTag(db, runId, key, value),
    endRun: (runId, status, endTime) => endRun(db, runId, status, endTime),
    heartbeat: (runId) => heartbeat(db, runId),
    keepAlive: (runId, intervalMs) => keepAlive(db, runId, intervalMs),
    deleteRun: (runId) => setRunLifecycle(db, runId, 'deleted'),
    restoreRun: (runId) => setRunLifecycle(db, runId, 'active'),
    resumeRun: (runId) => resumeRun(db, runId),
    listChildRuns: (parentRunId) => listChildRuns(db, parentRunId),
    searchRuns: (search) => searchRuns(db, search),

    logArtifact: (runId, localPath, artifactPath) =>
      logArtifact(db, artifacts, runId, localPath, artifactPath),
    listArtifacts: (runId, artifactPath) => listArtifacts(db, artifacts, runId, artifactPath),
    readArtifact: (runId, artifactPath) => readArtifact(db, artifacts, runId, artifactPath),
    artifactPath: (runId) => runArtifactDir(db, artifacts, runId),
    uploadArtifacts: (runId) => uploadRunArtifacts(db, artifacts, runId),
  };
}
