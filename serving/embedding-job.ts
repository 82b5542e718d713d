import { spawn, type ChildProcess } from 'node:child_process';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Kysely, Selectable } from 'kysely';
import type { BlobStore } from '../data/blob-store.js';
import type { OpenDatabase } from '../data/database.js';
import { isMenagerieError, MenagerieError } from '../core/errors.js';
import { decodeToPixels } from '../data/preprocess.js';
import type { Database, EmbeddingJobStatus, EmbeddingJobTable } from '../data/tables.js';
import { isProcessAlive } from '../core/process-alive.js';
import { vectorIndex, type VectorIndex, type VectorItem } from './vector-index.js';
import { modelVersionSpace } from './vector-space.js';
import type { ServedModel, VersionRef } from './served-model.js';

const BIN = path.resolve(import.meta.dirname, '../bin/menagerie.js');
/** A job on another host, or not yet given a pid, is stale after this long without progress. */
const STALE_AFTER_MS = 10 * 60_000;

/** A version's embedding job as its row says. */
export interface EmbeddingJob {
  modelVersionId: number;
  version: VersionRef;
  status: EmbeddingJobStatus;
  /** Embedding length; null until the model is loaded. */
  dimension: number | null;
  done: number;
  total: number;
  error: string | null;
  pid: number | null;
  startedAt: number | null;
  finishedAt: number | null;
}

/** The id of a version's model_versions row (it names the version's vector space). */
export async function modelVersionId(db: Kysely<Database>, ref: VersionRef): Promise<number> {
  const row = await db
    .selectFrom('model_versions')
    .innerJoin('registered_models', 'registered_models.id', 'model_versions.model_id')
    .select('model_versions.id')
    .where('registered_models.name', '=', ref.name)
    .where('model_versions.version', '=', ref.version)
    .executeTakeFirst();
  if (!row)
    throw new MenagerieError(
      'MODEL_VERSION_NOT_FOUND',
      `model '${ref.name}' has no version ${ref.version}`,
    );
  return row.id;
}

function toJob(row: Selectable<EmbeddingJobTable>, version: VersionRef): EmbeddingJob {
  return {
    modelVersionId: row.model_version_id,
    version,
    status: row.status,
    dimension: row.dimension,
    done: row.done,
    total: row.total,
    error: row.error,
    pid: row.pid,
    startedAt: row.started_at,
    finishedAt: row.finished_at,
  };
}

/** The version's embedding job, or null if none was ever started. */
export async function getEmbeddingJob(
  db: Kysely<Database>,
  ref: VersionRef,
): Promise<EmbeddingJob | null> {
  const id = await modelVersionId(db, ref);
  const row = await db
    .selectFrom('embedding_jobs')
    .selectAll()
    .where('model_version_id', '=', id)
    .executeTakeFirst();
  return row ? toJob(row, ref) : null;
}

/**
 * Marks FAILED the PENDING or RUNNING jobs whose process is gone (on this host) or silent
 * for 10 minutes (elsewhere), as `failStaleRuns` does for runs; returns their version ids.
 * Every job start calls it, so a killed job never blocks a rerun.
 */
export async function failStaleEmbeddingJobs(
  db: Kysely<Database>,
  options: { now?: number; isProcessAlive?: (pid: number) => boolean } = {},
): Promise<number[]> {
  const now = options.now ?? Date.now();
  const alive = options.isProcessAlive ?? isProcessAlive;
  const host = os.hostname();
  const active = await db
    .selectFrom('embedding_jobs')
    .selectAll()
    .where('status', 'in', ['PENDING', 'RUNNING'])
    .execute();
  const failed: number[] = [];
  for (const job of active) {
    const reason = staleJobReason(job, { now, host, alive });
    if (!reason) continue;
    const result = await db
      .updateTable('embedding_jobs')
      .set({ status: 'FAILED', error: reason, finished_at: now, updated_at: now })
      .where('id', '=', job.id)
      .where('status', '=', job.status)
      .executeTakeFirst();
    if (result.numUpdatedRows > 0n) failed.push(job.model_version_id);
  }
  return failed;
}

/**
 * Why a background job's row (embeddings, a feature space) is stale, or null: its process
 * is gone (on this host), or it is silent for 10 minutes (elsewhere, or not yet given a pid).
 */
export function staleJobReason(
  job: { pid: number | null; hostname: string | null; updated_at: number },
  at: { now: number; host?: string; alive?: (pid: number) => boolean },
): string | null {
  const alive = at.alive ?? isProcessAlive;
  if (job.pid !== null && job.hostname === (at.host ?? os.hostname()))
    return job.pid !== process.pid && !alive(job.pid)
      ? `process ${job.pid} exited before the job finished`
      : null;
  return at.now - job.updated_at > STALE_AFTER_MS
    ? `no progress since ${new Date(job.updated_at).toISOString()}`
    : null;
}

/** Claims the job row for `pid`; refuses if another live process holds it. */
async function claimJob(
  db: Kysely<Database>,
  id: number,
  ref: VersionRef,
  status: 'PENDING' | 'RUNNING',
  pid: number | null,
): Promise<void> {
  await failStaleEmbeddingJobs(db);
  const now = Date.now();
  await db.transaction().execute(async (trx) => {
    const existing = await trx
      .selectFrom('embedding_jobs')
      .select(['status', 'pid'])
      .where('model_version_id', '=', id)
      .executeTakeFirst();
    const heldByOther =
      existing &&
      (existing.status === 'RUNNING' || existing.status === 'PENDING') &&
      existing.pid !== pid &&
      !(status === 'RUNNING' && existing.status === 'PENDING');
    if (heldByOther)
      throw new MenagerieError(
        'EMBEDDING_JOB_RUNNING',
        `embeddings of ${ref.name} version ${ref.version} are already being computed by process ${existing.pid ?? '(starting)'}`,
      );
    await trx
      .insertInto('embedding_jobs')
      .values({
        model_version_id: id,
        status,
        pid,
        hostname: os.hostname(),
        started_at: now,
        updated_at: now,
      })
      .onConflict((oc) =>
        oc.column('model_version_id').doUpdateSet({
          status,
          pid,
          hostname: os.hostname(),
          error: null,
          started_at: now,
          finished_at: null,
          updated_at: now,
        }),
      )
      .execute();
  });
}

export interface EmbeddingJobOptions {
  /** Images per forward pass (default 32). */
  batchSize?: number;
  /** Pause between batches, so a job on a busy machine leaves CPU to serving (default 0). */
  pauseMs?: number;
  onProgress?(progress: { done: number; total: number }): void;
}

/**
 * Computes the embeddings of every dataset image for one version into its vector space
 * (`modelVersionSpace(id)` of the database's vector index), in this process (the
 * `menagerie embed` child runs it). Resumable: images already embedded
 * are skipped, so a rerun after a kill finishes the rest. Images that no longer decode
 * (a `--reference` file deleted) are skipped and named in the error column.
 *
 * ```ts
 * const job = await runEmbeddingJob(
 *   { database, blobs, loadModel: () => loadServedModel(version, workspace.plugins) },
 *   { name: 'faces', version: 3 },
 * ); // job.status === 'READY'
 * ```
 */
export async function runEmbeddingJob(
  deps: {
    database: OpenDatabase;
    blobs: BlobStore;
    loadModel: () => Promise<ServedModel>;
    /** Default: the database's own (`vectorIndex(database)`). */
    vectors?: VectorIndex;
  },
  ref: VersionRef,
  options: EmbeddingJobOptions = {},
): Promise<EmbeddingJob> {
  const { db } = deps.database;
  const vectors = deps.vectors ?? vectorIndex(deps.database);
  const batchSize = options.batchSize ?? 32;
  const id = await modelVersionId(db, ref);
  await claimJob(db, id, ref, 'RUNNING', process.pid);
  const update = (values: Partial<Omit<Selectable<EmbeddingJobTable>, 'id'>>) =>
    db
      .updateTable('embedding_jobs')
      .set({ ...values, updated_at: Date.now() })
      .where('model_version_id', '=', id)
      .execute();
  let model: ServedModel | undefined;
  try {
    model = await deps.loadModel();
    const space = modelVersionSpace(id);
    await vectors.ensure(space, model.embeddingSize);
    const images = await db
      .selectFrom('images')
      .innerJoin('labels', 'labels.id', 'images.label_id')
      .select(['images.id', 'images.uri', 'labels.name as label'])
      .orderBy('images.id')
      .execute();
    const embedded = await vectors.ids(space);
    const todo = images.filter((image) => !embedded.has(image.id));
    let done = images.length - todo.length;
    const skipped: string[] = [];
    await update({ dimension: model.embeddingSize, total: images.length, done });
    for (let start = 0; start < todo.length; start += batchSize) {
      const chunk = todo.slice(start, start + batchSize);
      const decoded = await Promise.all(
        chunk.map(async (image) => {
          try {
            const bytes = await deps.blobs.get(image.uri);
            return await decodeToPixels(bytes, model!.inputSpec, `image ${image.id}`);
          } catch (error) {
            if (!isMenagerieError(error)) throw error;
            skipped.push(`image ${image.id}: ${error.code}`);
            return null;
          }
        }),
      );
      const usable = chunk.filter((_, i) => decoded[i] !== null);
      const { embeddings } = model.forward(decoded.filter((p): p is Uint8Array => p !== null));
      await vectors.upsert(
        space,
        usable.map((image, i): VectorItem => ({
          id: image.id,
          label: image.label,
          vector: embeddings[i]!,
        })),
      );
      done += chunk.length;
      await update({ done });
      options.onProgress?.({ done, total: images.length });
      if (options.pauseMs) await sleep(options.pauseMs);
    }
    // Large spaces get their approximate index (pgvector HNSW) before they are READY.
    await vectors.optimize(space);
    await update({
      status: 'READY',
      finished_at: Date.now(),
      error: skipped.length
        ? `skipped ${skipped.length}: ${skipped.slice(0, 10).join(', ')}`
        : null,
    });
  } catch (error) {
    const message = error instanceof Error ? error.message : String(error);
    await update({ status: 'FAILED', error: message, finished_at: Date.now() });
    throw error;
  } finally {
    model?.dispose();
  }
  return (await getEmbeddingJob(db, ref))!;
}

export interface StartedEmbeddingJob {
  child: ChildProcess;
  /** Settles when the child exits: the job as its row says, READY or FAILED. */
  finished: Promise<EmbeddingJob>;
}

/**
 * Starts `menagerie embed` for a version in a child process, so serving never stalls on
 * it; progress is in the `embedding_jobs` row (`getEmbeddingJob`). A job that is already
 * READY is not run again; one running elsewhere gives EMBEDDING_JOB_RUNNING.
 *
 * ```ts
 * const started = await startEmbeddingJob({ database, dataDir }, { name: 'faces', version: 3 });
 * const job = await started?.finished; // job.status === 'READY'
 * ```
 */
export async function startEmbeddingJob(
  deps: { database: OpenDatabase; dataDir: string },
  ref: VersionRef,
  options: Omit<EmbeddingJobOptions, 'onProgress'> = {},
): Promise<StartedEmbeddingJob | null> {
  const { db } = deps.database;
  const id = await modelVersionId(db, ref);
  await failStaleEmbeddingJobs(db);
  const existing = await getEmbeddingJob(db, ref);
  if (existing?.status === 'READY') return null;
  await claimJob(db, id, ref, 'PENDING', null);
  const args = [BIN, '--data-dir', deps.dataDir, 'embed', '--model', ref.name];
  args.push('--version', String(ref.version));
  if (options.batchSize) args.push('--batch-size', String(options.batchSize));
  if (options.pauseMs) args.push('--pause-ms', String(options.pauseMs));
  const child = spawn(process.execPath, args, { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr?.on('data', (chunk: Buffer) => {
    stderr = (stderr + chunk.toString('utf8')).slice(-4000);
  });
  if (child.pid !== undefined)
    await db
      .updateTable('embedding_jobs')
      .set({ pid: child.pid, updated_at: Date.now() })
      .where('model_version_id', '=', id)
      .where('status', '=', 'PENDING')
      .execute();
  const finished = new Promise<EmbeddingJob>((resolve, reject) => {
    child.on('error', reject);
    child.on('close', (code, signal) => {
      void (async () => {
        // The child's row is final unless it died first; then say how.
        const now = Date.now();
        await db
          .updateTable('embedding_jobs')
          .set({
            status: 'FAILED',
            error: `menagerie embed exited with ${signal ?? `code ${code}`}: ${stderr.trim().split('\n').at(-1) ?? ''}`,
            finished_at: now,
            updated_at: now,
          })
          .where('model_version_id', '=', id)
          .where('status', 'in', ['PENDING', 'RUNNING'])
          .execute();
        return (await getEmbeddingJob(db, ref))!;
      })().then(resolve, reject);
    });
  });
  return { child, finished };
}
