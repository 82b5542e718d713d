import { randomBytes } from 'node:crypto';
import os from 'node:os';
import type { Selectable } from 'kysely';
import { MenagerieError } from '../core/errors.js';
import { isProcessAlive } from '../core/process-alive.js';
import type { Rejection } from '../data/ingest/ingest-sources.js';
import type {
  EvaluationDatasetKind,
  EvaluationStatus,
  ModelEvaluationErrorTable,
  ModelEvaluationTable,
} from '../data/tables.js';
import type { Calibration } from '../training/calibration.js';
import type { EvaluationMetrics } from '../training/evaluation.js';
import { createRegistryStore } from './registry-store.js';
import type { ModelRegistryOptions } from './registry-types.js';

/** What an evaluation ran on. */
export interface EvaluationDataset {
  kind: EvaluationDatasetKind;
  /** The folder's or manifest's absolute path, or the split's name. */
  source: string;
  /** Images scored: readable, with a label the model knows. */
  imageCount: number;
  /**
   * sha256 over the sorted `<image sha256> <label>` lines of the images scored: two
   * evaluations with the same value ran on the same images with the same labels, wherever
   * the files were. Null until the evaluation finishes.
   */
  sha256: string | null;
}

/** The scores of a finished evaluation. */
export interface EvaluationScores extends EvaluationMetrics {
  calibration: Calibration;
}

/** A file left out of an evaluation, and why (the ingest's reasons). */
export type UnreadableFile = Rejection;

/** A label of the data the model does not predict: its images were left out. */
export interface UnknownLabel {
  label: string;
  count: number;
}

/** One of the highest-confidence wrong predictions, with its image in the blob store. */
export interface WorstError {
  /** 1 is the most confident mistake. */
  rank: number;
  /** The file's path, or the catalogue image's source path (`image #12` when it has none). */
  source: string;
  /** The catalogue image, for a split; null for files (or once the image is deleted). */
  imageId: number | null;
  blobUri: string;
  sha256: string;
  /** jpeg, png or webp. */
  format: string;
  trueLabel: string;
  predictedLabel: string;
  /** The predicted label's probability. */
  confidence: number;
  /** In the model's label order. */
  probabilities: number[];
}

/** A model version's evaluation on a data set, as mlflow.evaluate records one. */
export interface ModelEvaluation {
  /** 32 lowercase hex digits. */
  id: string;
  name: string;
  version: number;
  status: EvaluationStatus;
  dataset: EvaluationDataset;
  /** Null until FINISHED. */
  scores: EvaluationScores | null;
  unreadable: UnreadableFile[];
  unknownLabels: UnknownLabel[];
  /** Most confident first. */
  worstErrors: WorstError[];
  /** The confusion-matrix PNG in the blob store; null until FINISHED. */
  confusionMatrixUri: string | null;
  /** Files looked at so far, of `total` (unknown labels not counted). */
  done: number;
  total: number;
  /** Why it FAILED or was KILLED. */
  error: string | null;
  createdBy: string | null;
  createdAt: number;
  updatedAt: number;
  finishedAt: number | null;
}

/** What a finished evaluation stores. */
export interface EvaluationResult {
  imageCount: number;
  datasetSha256: string;
  scores: EvaluationScores;
  unreadable: readonly UnreadableFile[];
  unknownLabels: readonly UnknownLabel[];
  worstErrors: readonly WorstError[];
  confusionMatrixUri: string;
}

/**
 * Evaluations of registered model versions: each row links to its version (and goes with
 * it when the version is deleted), holds the data set it ran on, the metrics, the files
 * left out and the worst errors. Computing one is serving's (serving/model-evaluation.ts);
 * this stores and reads them.
 *
 * ```ts
 * const evaluations = createModelEvaluations({ db });
 * const e = await evaluations.start({ name: 'faces', version: 3, dataset: { kind: 'split', source: 'val' } });
 * await evaluations.progress(e.id, 10, 120);
 * await evaluations.finish(e.id, result);
 * (await evaluations.list('faces', 3))[0].scores?.accuracy; // 0.94
 * ```
 */
export interface ModelEvaluations {
  /** A RUNNING evaluation of a version, owned by this process. MODEL_VERSION_NOT_FOUND. */
  start(input: {
    name: string;
    version: number;
    dataset: { kind: EvaluationDatasetKind; source: string };
    createdBy?: string;
  }): Promise<ModelEvaluation>;
  /** Records how far a RUNNING evaluation is (also its sign of life). */
  progress(id: string, done: number, total: number): Promise<void>;
  /** Stores the result: the evaluation is FINISHED. EVALUATION_NOT_FOUND unless RUNNING. */
  finish(id: string, result: EvaluationResult): Promise<ModelEvaluation>;
  /**
   * Ends a RUNNING evaluation FAILED or KILLED with the reason, keeping what is known of the
   * files left out; an evaluation already ended is returned unchanged.
   */
  end(
    id: string,
    status: 'FAILED' | 'KILLED',
    error: string,
    partial?: { unreadable?: readonly UnreadableFile[]; unknownLabels?: readonly UnknownLabel[] },
  ): Promise<ModelEvaluation>;
  /** EVALUATION_NOT_FOUND for an unknown id. */
  get(id: string): Promise<ModelEvaluation>;
  /** A version's evaluations, newest first. MODEL_VERSION_NOT_FOUND. */
  list(name: string, version: number): Promise<ModelEvaluation[]>;
  /**
   * Ends FAILED the RUNNING evaluations whose process is gone (on this host: it no longer
   * exists; on another: no progress for `staleAfterMs`, default 10 minutes). Every workspace
   * open runs it, as it does for runs.
   */
  failStale(options?: { staleAfterMs?: number }): Promise<string[]>;
}

export const EVALUATION_ID = /^[0-9a-f]{32}$/;
const STALE_AFTER_MS = 10 * 60_000;

type EvaluationRow = Selectable<ModelEvaluationTable> & { name: string; version: number };

export function createModelEvaluations(options: ModelRegistryOptions): ModelEvaluations {
  const store = createRegistryStore(options);
  const { db, now } = store;
  const notFound = (id: string) =>
    new MenagerieError('EVALUATION_NOT_FOUND', `no evaluation has id '${id.slice(0, 40)}'`);

  const selectRows = () =>
    db
      .selectFrom('model_evaluations')
      .innerJoin('model_versions', 'model_versions.id', 'model_evaluations.model_version_id')
      .innerJoin('registered_models', 'registered_models.id', 'model_versions.model_id')
      .selectAll('model_evaluations')
      .select(['registered_models.name as name', 'model_versions.version as version']);

  async function toEvaluations(rows: readonly EvaluationRow[]): Promise<ModelEvaluation[]> {
    if (rows.length === 0) return [];
    const errors = await db
      .selectFrom('model_evaluation_errors')
      .selectAll()
      .where(
        'evaluation_id',
        'in',
        rows.map((r) => r.id),
      )
      .orderBy('rank')
      .execute();
    return rows.map((r) =>
      toEvaluation(
        r,
        errors.filter((e) => e.evaluation_id === r.id),
      ),
    );
  }

  async function get(id: string): Promise<ModelEvaluation> {
    if (!EVALUATION_ID.test(id)) throw notFound(id);
    const row = await selectRows().where('model_evaluations.id', '=', id).executeTakeFirst();
    if (!row) throw notFound(id);
    return (await toEvaluations([row]))[0]!;
  }

  return {
    async start({ name, version, dataset, createdBy }) {
      const model = await store.findModel(db, name);
      const row = await store.findVersion(db, model, version);
      const id = randomBytes(16).toString('hex');
      const at = now();
      await db
        .insertInto('model_evaluations')
        .values({
          id,
          model_version_id: row.id,
          status: 'RUNNING',
          dataset_kind: dataset.kind,
          dataset_source: dataset.source,
          dataset_sha256: null,
          metrics: null,
          confusion_matrix_uri: null,
          error: null,
          created_by: createdBy ?? store.user,
          owner_pid: process.pid,
          hostname: os.hostname(),
          created_at: at,
          updated_at: at,
          finished_at: null,
        })
        .execute();
      return get(id);
    },

    async progress(id, done, total) {
      await db
        .updateTable('model_evaluations')
        .set({ done, total, updated_at: now() })
        .where('id', '=', id)
        .where('status', '=', 'RUNNING')
        .execute();
    },

    async finish(id, result) {
      const at = now();
      await db.transaction().execute(async (trx) => {
        const updated = await trx
          .updateTable('model_evaluations')
          .set({
            status: 'FINISHED',
            image_count: result.imageCount,
            dataset_sha256: result.datasetSha256,
            metrics: JSON.stringify(result.scores),
            unreadable: JSON.stringify(result.unreadable),
            unknown_labels: JSON.stringify(result.unknownLabels),
            confusion_matrix_uri: result.confusionMatrixUri,
            updated_at: at,
            finished_at: at,
          })
          .where('id', '=', id)
          .where('status', '=', 'RUNNING')
          .executeTakeFirst();
        if (Number(updated.numUpdatedRows) === 0) throw notFound(id);
        if (result.worstErrors.length > 0)
          await trx
            .insertInto('model_evaluation_errors')
            .values(result.worstErrors.map((e) => toErrorRow(id, e)))
            .execute();
      });
      return get(id);
    },

    async end(id, status, error, partial = {}) {
      const at = now();
      await db
        .updateTable('model_evaluations')
        .set({
          status,
          error,
          ...(partial.unreadable && { unreadable: JSON.stringify(partial.unreadable) }),
          ...(partial.unknownLabels && { unknown_labels: JSON.stringify(partial.unknownLabels) }),
          updated_at: at,
          finished_at: at,
        })
        .where('id', '=', id)
        .where('status', '=', 'RUNNING')
        .execute();
      return get(id);
    },

    get,

    async list(name, version) {
      const model = await store.findModel(db, name);
      const row = await store.findVersion(db, model, version);
      const rows = await selectRows()
        .where('model_evaluations.model_version_id', '=', row.id)
        .orderBy('model_evaluations.created_at', 'desc')
        .orderBy('model_evaluations.id')
        .execute();
      return toEvaluations(rows);
    },

    async failStale({ staleAfterMs = STALE_AFTER_MS } = {}) {
      const at = now();
      const host = os.hostname();
      const running = await db
        .selectFrom('model_evaluations')
        .select(['id', 'owner_pid', 'hostname', 'updated_at'])
        .where('status', '=', 'RUNNING')
        .execute();
      const failed: string[] = [];
      for (const e of running) {
        const reason =
          e.hostname === host && e.owner_pid !== null
            ? e.owner_pid !== process.pid && !isProcessAlive(e.owner_pid)
              ? `process ${e.owner_pid} on ${host} exited before the evaluation ended`
              : null
            : at - Number(e.updated_at) > staleAfterMs
              ? `no progress from ${e.hostname ?? 'an unknown host'} since ${new Date(Number(e.updated_at)).toISOString()}`
              : null;
        if (!reason) continue;
        const result = await db
          .updateTable('model_evaluations')
          .set({ status: 'FAILED', error: reason, updated_at: at, finished_at: at })
          .where('id', '=', e.id)
          .where('status', '=', 'RUNNING')
          .executeTakeFirst();
        if (Number(result.numUpdatedRows) > 0) failed.push(e.id);
      }
      return failed;
    },
  };
}

function toErrorRow(evaluationId: string, e: WorstError): ModelEvaluationErrorTable {
  return {
    evaluation_id: evaluationId,
    rank: e.rank,
    source: e.source,
    image_id: e.imageId,
    blob_uri: e.blobUri,
    sha256: e.sha256,
    format: e.format,
    true_label: e.trueLabel,
    predicted_label: e.predictedLabel,
    confidence: e.confidence,
    probabilities: JSON.stringify(e.probabilities),
  };
}

function toEvaluation(
  row: EvaluationRow,
  errors: readonly Selectable<ModelEvaluationErrorTable>[],
): ModelEvaluation {
  return {
    id: row.id,
    name: row.name,
    version: row.version,
    status: row.status,
    dataset: {
      kind: row.dataset_kind,
      source: row.dataset_source,
      imageCount: row.image_count,
      sha256: row.dataset_sha256,
    },
    scores: row.metrics === null ? null : (JSON.parse(row.metrics) as EvaluationScores),
    unreadable: JSON.parse(row.unreadable) as UnreadableFile[],
    unknownLabels: JSON.parse(row.unknown_labels) as UnknownLabel[],
    worstErrors: errors.map((e) => ({
      rank: e.rank,
      source: e.source,
      imageId: e.image_id,
      blobUri: e.blob_uri,
      sha256: e.sha256,
      format: e.format,
      trueLabel: e.true_label,
      predictedLabel: e.predicted_label,
      confidence: e.confidence,
      probabilities: JSON.parse(e.probabilities) as number[],
    })),
    confusionMatrixUri: row.confusion_matrix_uri,
    done: row.done,
    total: row.total,
    error: row.error,
    createdBy: row.created_by,
    // bigint columns: PostgreSQL's driver hands int8 back as a string.
    createdAt: Number(row.created_at),
    updatedAt: Number(row.updated_at),
    finishedAt: row.finished_at === null ? null : Number(row.finished_at),
  };
}
