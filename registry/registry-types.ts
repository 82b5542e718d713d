// The shapes the model registry takes and returns. They sit below every part of the
// registry (registry-store.ts, registered-models.ts, …) so the parts and model-registry.ts,
// which composes them, import them without a cycle; model-registry.ts re-exports them.
import type { Kysely } from 'kysely';
import type { InputSpec } from '../data/input-spec.js';
import type {
  Database,
  ModelStage,
  ModelVersionStatus,
  StageTransitionAction,
} from '../data/tables.js';

export interface ModelRegistryOptions {
  db: Kysely<Database>;
  /** Recorded as who made a change when a call names nobody (default: the OS user). */
  user?: string;
  /** Milliseconds since the epoch; tests pin it. */
  now?: () => number;
}

export interface RegisteredModel {
  name: string;
  description: string | null;
  tags: Record<string, string>;
  /** Alias → version number. */
  aliases: Record<string, number>;
  /** Highest existing version number, null when the model has none. */
  latestVersion: number | null;
  createdAt: number;
  updatedAt: number;
}

export interface ModelVersion {
  name: string;
  version: number;
  runId: string | null;
  /** Artifact URI of the saved model folder. */
  source: string;
  /** The model plugin that built it, so it loads back with the same preprocessing. */
  plugin: string;
  pluginVersion: string | null;
  inputSpec: InputSpec;
  /** Class names in the model's output order. */
  labels: string[];
  metrics: Record<string, number>;
  status: ModelVersionStatus;
  statusMessage: string | null;
  stage: ModelStage;
  aliases: string[];
  description: string | null;
  tags: Record<string, string>;
  createdAt: number;
  updatedAt: number;
  createdBy: string | null;
}

/** One row of the audit trail: a stage move, an alias change, a creation or a deletion. */
export interface StageTransition {
  id: number;
  /** Shared by every row one atomic change wrote (a promotion writes several). */
  changeId: string;
  name: string;
  version: number;
  action: StageTransitionAction;
  fromStage: string | null;
  toStage: string | null;
  alias: string | null;
  /** For alias changes: the version the alias pointed to before, if any. */
  previousVersion: number | null;
  user: string;
  at: number;
  comment: string | null;
}

export interface Page<T> {
  items: T[];
  /** Pass as `after` for the next page; null on the last page. */
  endCursor: string | null;
  hasNextPage: boolean;
}

/** Who made a change and why; `user` defaults to the registry's. */
export interface ChangeOptions {
  user?: string;
  comment?: string;
}

export interface NewModelVersion {
  /** The registered model; created on first use, as MLflow's `register_model` does. */
  name: string;
  source: string;
  runId?: string | null;
  plugin: string;
  pluginVersion?: string | null;
  inputSpec: InputSpec;
  labels: readonly string[];
  metrics?: Record<string, number>;
  description?: string | null;
  tags?: Record<string, string>;
  createdBy?: string;
}

export interface PromotionResult {
  version: ModelVersion;
  /** The version the champion alias left, null if there was none or it did not move. */
  previousChampion: number | null;
  /** Versions moved from Production to Archived. */
  archived: number[];
}
