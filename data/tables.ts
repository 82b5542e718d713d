import type { Generated, Insertable, Selectable } from 'kysely';

/**
 * Table types for the current schema; migrations in ./migrations create them. Timestamps
 * are integer milliseconds since the Unix epoch.
 */
export interface LabelTable {
  id: Generated<number>;
  /** Normalised: lowercase letters, digits and '-' (see label-name.ts). */
  name: string;
  created_at: number;
}

export const SPLITS = ['train', 'val', 'test'] as const;
export type Split = (typeof SPLITS)[number];

export interface ImageTable {
  id: Generated<number>;
  /** Hex sha256 of the file's bytes: identical files are stored once. */
  sha256: string;
  /** Where the bytes are: `blob:` (the blob store) or `file://` (ingested by reference). */
  uri: string;
  label_id: number;
  split: Split;
  width: number;
  height: number;
  /** sharp's name for the decoded format: jpeg, png, webp. */
  format: string;
  bytes: number;
  /** The path the image was ingested from, for reports; null when uploaded. */
  source_path: string | null;
  added_at: number;
}

export const MODEL_STAGES = ['None', 'Staging', 'Production', 'Archived'] as const;
export type ModelStage = (typeof MODEL_STAGES)[number];
export const MODEL_VERSION_STATUSES = ['PENDING', 'READY', 'FAILED'] as const;
export type ModelVersionStatus = (typeof MODEL_VERSION_STATUSES)[number];

export interface RegisteredModelTable {
  id: Generated<number>;
  name: string;
  description: string | null;
  /** Highest version number issued; deleted versions' numbers are never reused. */
  last_version: Generated<number>;
  created_at: number;
  updated_at: number;
}

export interface RegisteredModelTagTable {
  model_id: number;
  key: string;
  value: string;
}

export interface ModelVersionTable {
  id: Generated<number>;
  model_id: number;
  /** 1, 2, … per registered model. */
  version: number;
  /** The tracking run that produced it; kept (unlinked) if the run is deleted. */
  run_id: string | null;
  /** Artifact URI of the saved model folder. */
  source: string;
  plugin: string;
  plugin_version: string | null;
  /** JSON of the InputSpec the model was trained with. */
  input_spec: string;
  /** JSON array of class names in output order. */
  labels: string;
  /** JSON object of the run's final metrics when registered. */
  metrics: Generated<string>;
  status: ModelVersionStatus;
  status_message: string | null;
  stage: Generated<ModelStage>;
  description: string | null;
  created_at: number;
  updated_at: number;
  created_by: string | null;
}

export interface ModelVersionTagTable {
  version_id: number;
  key: string;
  value: string;
}

export interface ModelAliasTable {
  model_id: number;
  alias: string;
  version: number;
  updated_at: number;
}

export type StageTransitionAction = 'create' | 'stage' | 'alias_set' | 'alias_delete' | 'delete';

export interface StageTransitionTable {
  id: Generated<number>;
  /** Shared by the rows one atomic change wrote (a promotion writes several). */
  change_id: string;
  model_id: number;
  version: number;
  action: StageTransitionAction;
  from_stage: string | null;
  to_stage: string | null;
  alias: string | null;
  /** For alias moves: the version the alias pointed to before. */
  previous_version: number | null;
  user: string;
  at: number;
  comment: string | null;
}

export const EMBEDDING_JOB_STATUSES = ['PENDING', 'RUNNING', 'READY', 'FAILED'] as const;
export type EmbeddingJobStatus = (typeof EMBEDDING_JOB_STATUSES)[number];

/** Progress of computing one model version's image embeddings into its vector space. */
export interface EmbeddingJobTable {
  id: Generated<number>;
  model_version_id: number;
  status: EmbeddingJobStatus;
  /** Length of the embedding vectors; null until the job has loaded the model. */
  dimension: number | null;
  done: Generated<number>;
  total: Generated<number>;
  error: string | null;
  /** The process computing it, so a killed job is told from a live one. */
  pid: number | null;
  hostname: string | null;
  started_at: number | null;
  finished_at: number | null;
  updated_at: number;
}

/**
 * The catalogue in a pretrained backbone's feature space (similar images whichever model is
 * champion): the projection to the space and the job filling it.
 */
export interface FeatureSpaceTable {
  id: Generated<number>;
  /** The vector index's space name. */
  space: string;
  /** The backbone plugin's name. */
  backbone: string;
  weights_sha256: string;
  /** The backbone's feature length. */
  features: number;
  /** The space's vector length, after projection. */
  dimension: number;
  /** A blob of float32: the mean (`features`) then the components (`dimension × features`). */
  projection_uri: string | null;
  status: EmbeddingJobStatus;
  done: Generated<number>;
  total: Generated<number>;
  error: string | null;
  pid: number | null;
  hostname: string | null;
  started_at: number | null;
  finished_at: number | null;
  updated_at: number;
}

/**
 * A distributed tuning search (`tune --distributed N`): the oracle's state and its trials,
 * updated in a transaction under this row's lock by whichever worker reports a trial.
 */
export interface TuningSearchTable {
  id: Generated<number>;
  /** The tuning (parent) run. */
  run_id: string;
  /** JSON: what every trial needs (plugin, tuner, objective, epochs, seed…). */
  config: string;
  /** JSON: the oracle's state and the trials with their status. */
  state: string;
  /** Trials in flight at most. */
  parallelism: number;
  status: 'RUNNING' | 'FINISHED' | 'FAILED' | 'KILLED';
  created_at: number;
  updated_at: number;
}

/**
 * A vector space (a model version's embeddings, a pretrained backbone's features): the
 * table its vectors live in (vec0 on SQLite, pgvector on PostgreSQL) and their length.
 */
export interface VectorSpaceTable {
  id: Generated<number>;
  /** `model-version:<model_versions.id>`, or any name a feature gives its space. */
  space: string;
  table_name: string;
  dimension: number;
  created_at: number;
}

/** One served prediction, and the feedback it later got. */
export interface PredictionTable {
  id: Generated<number>;
  model_name: string;
  model_version: number;
  label: string;
  confidence: number;
  /** 1 when confidence was below the engine's threshold (SQLite has no boolean). */
  uncertain: number;
  /** JSON array of `{ label, p }` over every class, most probable first. */
  probabilities: string;
  latency_ms: number;
  /** Hex sha256 of the uploaded bytes. */
  image_sha256: string;
  /**
   * The upload's bytes in the blob store, kept so feedback can add them to the data set;
   * null when they were not kept (a read-only server) or have expired (upload-retention.ts).
   */
  blob_uri: string | null;
  /** Size of the kept upload, for the retention size limit; null before it was recorded. */
  upload_bytes: number | null;
  created_at: number;
  feedback_label: string | null;
  feedback_at: number | null;
  /** The image the feedback added (or relabelled); null once that image is deleted. */
  feedback_image_id: number | null;
}

export const EVALUATION_STATUSES = ['RUNNING', 'FINISHED', 'FAILED', 'KILLED'] as const;
export type EvaluationStatus = (typeof EVALUATION_STATUSES)[number];
export const EVALUATION_DATASET_KINDS = ['folder', 'manifest', 'split'] as const;
export type EvaluationDatasetKind = (typeof EVALUATION_DATASET_KINDS)[number];

/** A model version's evaluation on a data set (registry/model-evaluations.ts). */
export interface ModelEvaluationTable {
  /** 32 lowercase hex digits. */
  id: string;
  model_version_id: number;
  status: EvaluationStatus;
  dataset_kind: EvaluationDatasetKind;
  /** The folder's or manifest's absolute path, or the split's name. */
  dataset_source: string;
  /** Images scored: readable, with a label the model knows. */
  image_count: Generated<number>;
  /** sha256 over the sorted (image sha256, label) pairs scored; null until finished. */
  dataset_sha256: string | null;
  /** JSON of EvaluationMetrics plus calibration; null until finished. */
  metrics: string | null;
  /** JSON array of `{ path, reason, detail }`. */
  unreadable: Generated<string>;
  /** JSON array of `{ label, count }`. */
  unknown_labels: Generated<string>;
  confusion_matrix_uri: string | null;
  done: Generated<number>;
  total: Generated<number>;
  error: string | null;
  created_by: string | null;
  owner_pid: number | null;
  hostname: string | null;
  created_at: number;
  updated_at: number;
  finished_at: number | null;
}

/** One of an evaluation's highest-confidence wrong predictions. */
export interface ModelEvaluationErrorTable {
  evaluation_id: string;
  /** 1 is the most confident mistake. */
  rank: number;
  /** The file's path, or the catalogue image's source path. */
  source: string;
  /** The catalogue image when the data was a split; null for files, or once deleted. */
  image_id: number | null;
  /** The image's bytes in the blob store (the catalogue image's own URI for a split). */
  blob_uri: string;
  sha256: string;
  format: string;
  true_label: string;
  predicted_label: string;
  confidence: number;
  /** JSON array of probabilities in the model's label order. */
  probabilities: string;
}

export const RUN_STATUSES = ['RUNNING', 'FINISHED', 'FAILED', 'KILLED'] as const;
export type RunStatus = (typeof RUN_STATUSES)[number];
/** Soft delete, as MLflow's lifecycle_stage: deleted rows stay and can be restored. */
export type Lifecycle = 'active' | 'deleted';

export interface ExperimentTable {
  id: Generated<number>;
  name: string;
  description: string | null;
  lifecycle: Generated<Lifecycle>;
  created_at: number;
  updated_at: number;
}

export interface ExperimentTagTable {
  experiment_id: number;
  key: string;
  value: string;
}

export interface RunTable {
  /** 32 lowercase hex digits, as MLflow's run_id. */
  id: string;
  experiment_id: number;
  name: string;
  status: RunStatus;
  start_time: number;
  end_time: number | null;
  /** The tuning run a trial belongs to. */
  parent_run_id: string | null;
  /** `file://` URL of the run's artifact folder. */
  artifact_uri: string;
  lifecycle: Generated<Lifecycle>;
  /** Owner process of a RUNNING run, so a crashed owner can be told from a live one. */
  owner_pid: number | null;
  hostname: string | null;
  heartbeat_at: number | null;
}

export interface ParamTable {
  run_id: string;
  key: string;
  value: string;
}

export interface MetricTable {
  id: Generated<number>;
  run_id: string;
  key: string;
  /** Null stands for NaN: SQLite has none. Infinities are stored as they are. */
  value: number | null;
  step: number;
  timestamp: number;
}

/** The value at the highest (step, timestamp) of each run's metric, kept by the writer. */
export interface LatestMetricTable {
  run_id: string;
  key: string;
  value: number | null;
  step: number;
  timestamp: number;
}

export interface RunTagTable {
  run_id: string;
  key: string;
  value: string;
}

export interface Database {
  labels: LabelTable;
  images: ImageTable;
  experiments: ExperimentTable;
  experiment_tags: ExperimentTagTable;
  runs: RunTable;
  params: ParamTable;
  metrics: MetricTable;
  latest_metrics: LatestMetricTable;
  run_tags: RunTagTable;
  registered_models: RegisteredModelTable;
  registered_model_tags: RegisteredModelTagTable;
  model_versions: ModelVersionTable;
  model_version_tags: ModelVersionTagTable;
  model_aliases: ModelAliasTable;
  stage_transitions: StageTransitionTable;
  embedding_jobs: EmbeddingJobTable;
  feature_spaces: FeatureSpaceTable;
  predictions: PredictionTable;
  vector_spaces: VectorSpaceTable;
  model_evaluations: ModelEvaluationTable;
  model_evaluation_errors: ModelEvaluationErrorTable;
  tuning_searches: TuningSearchTable;
}

export type LabelRow = Selectable<LabelTable>;
export type ImageRow = Selectable<ImageTable>;
export type NewImage = Insertable<ImageTable>;
