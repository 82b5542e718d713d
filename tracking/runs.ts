import { randomUUID } from 'node:crypto';
import os from 'node:os';
import type { Kysely, Selectable } from 'kysely';
import type { ArtifactStore } from '../data/artifact-store.js';
import { excerpt, MenagerieError } from '../core/errors.js';
import {
  RUN_STATUSES,
  type Database,
  type Lifecycle,
  type RunStatus,
  type RunTable,
} from '../data/tables.js';
import { getExperimentRow } from './experiments.js';
import { runArtifactUri } from './run-artifacts.js';
import { fromStored } from './run-data.js';
import { randomRunName } from './run-names.js';
import { getRunRow, touchActiveRun } from './run-row.js';
import { searchRunIds, type RunSearch } from './run-search.js';
import { chunks } from './sql-chunks.js';
import {
  checkKey,
  checkTimestamp,
  checkValue,
  invalid,
  MAX_KEY,
  MAX_TAG_VALUE,
} from './tracking-limits.js';

export interface Run {
  /** 32 lowercase hex digits. */
  id: string;
  experimentId: number;
  name: string;
  status: RunStatus;
  startTime: number;
  endTime: number | null;
  parentRunId: string | null;
  /** URI of the run's artifact folder: `file://…` or `s3://…`. */
  artifactUri: string;
  lifecycle: Lifecycle;
  ownerPid: number | null;
  hostname: string | null;
  heartbeatAt: number | null;
  params: Record<string, string>;
  /** The latest value of each metric (highest step); NaN and infinities as logged. */
  metrics: Record<string, number>;
  tags: Record<string, string>;
}

export interface CreateRunOptions {
  experimentId: number;
  name?: string;
  parentRunId?: string;
  tags?: Record<string, string>;
  startTime?: number;
}

/** Runs from their rows, with params, latest metrics and tags, in the rows' order. */
async function hydrate(db: Kysely<Database>, rows: Selectable<RunTable>[]): Promise<Run[]> {
  const ids = rows.map((r) => r.id);
  const params = new Map<string, [string, string][]>();
  const metrics = new Map<string, [string, number][]>();
  const tags = new Map<string, [string, string][]>();
  const add = <V>(map: Map<string, [string, V][]>, id: string, entry: [string, V]) => {
    const list = map.get(id) ?? [];
    list.push(entry);
    map.set(id, list);
  };
  for (const slice of chunks(ids)) {
    for (const r of await db
      .selectFrom('params')
      .selectAll()
      .where('run_id', 'in', slice)
      .orderBy('key')
      .execute())
      add(params, r.run_id, [r.key, r.value]);
    for (const r of await db
      .selectFrom('latest_metrics')
      .selectAll()
      .where('run_id', 'in', slice)
      .orderBy('key')
      .execute())
      add(metrics, r.run_id, [r.key, fromStored(r.value)]);
    for (const r of await db
      .selectFrom('run_tags')
      .selectAll()
      .where('run_id', 'in', slice)
      .orderBy('key')
      .execute())
      add(tags, r.run_id, [r.key, r.value]);
  }
  return rows.map((r) => ({
    id: r.id,
    experimentId: r.experiment_id,
    name: r.name,
    status: r.status,
    startTime: r.start_time,
    endTime: r.end_time,
    parentRunId: r.parent_run_id,
    artifactUri: r.artifact_uri,
    lifecycle: r.lifecycle,
    ownerPid: r.owner_pid,
    hostname: r.hostname,
    heartbeatAt: r.heartbeat_at,
    params: Object.fromEntries(params.get(r.id) ?? []),
    metrics: Object.fromEntries(metrics.get(r.id) ?? []),
    tags: Object.fromEntries(tags.get(r.id) ?? []),
  }));
}

/** The runs of these ids that exist, in the ids' order. */
async function runsByIds(db: Kysely<Database>, ids: readonly string[]): Promise<Run[]> {
  const rows: Selectable<RunTable>[] = [];
  for (const slice of chunks(ids))
    rows.push(...(await db.selectFrom('runs').selectAll().where('id', 'in', slice).execute()));
  const byId = new Map(rows.map((r) => [r.id, r]));
  return hydrate(
    db,
    ids.map((id) => byId.get(id)).filter((r) => r !== undefined),
  );
}

export async function createRun(
  db: Kysely<Database>,
  artifacts: ArtifactStore,
  { experimentId, name, parentRunId, tags = {}, startTime }: CreateRunOptions,
): Promise<Run> {
  const experiment = await getExperimentRow(db, experimentId);
  if (experiment.lifecycle === 'deleted')
    throw new MenagerieError(
      'EXPERIMENT_NOT_ACTIVE',
      `experiment '${experiment.name}' is deleted; restore it before starting runs in it`,
    );
  if (parentRunId !== undefined) await getRunRow(db, parentRunId);
  const runName = name?.trim() || randomRunName();
  if (runName.length > MAX_KEY) invalid(`run name should be at most ${MAX_KEY} characters`);
  for (const [key, value] of Object.entries(tags)) {
    checkKey('tag', key);
    checkValue('tag', key, String(value), MAX_TAG_VALUE);
  }
  const start = startTime ?? Date.now();
  checkTimestamp(start);
  const id = randomUUID().replaceAll('-', '');
  await db.transaction().execute(async (trx) => {
    await trx
      .insertInto('runs')
      .values({
        id,
        experiment_id: experimentId,
        name: runName,
        status: 'RUNNING',
        start_time: start,
        end_time: null,
        parent_run_id: parentRunId ?? null,
        artifact_uri: runArtifactUri(artifacts, experimentId, id),
        owner_pid: process.pid,
        hostname: os.hostname(),
        heartbeat_at: Date.now(),
      })
      .execute();
    const entries = Object.entries(tags);
    if (entries.length > 0)
      await trx
        .insertInto('run_tags')
        .values(entries.map(([key, value]) => ({ run_id: id, key, value: String(value) })))
        .execute();
  });
  return (await runsByIds(db, [id]))[0]!;
}

export async function getRun(db: Kysely<Database>, runId: string): Promise<Run> {
  return (await hydrate(db, [await getRunRow(db, runId)]))[0]!;
}

export async function endRun(
  db: Kysely<Database>,
  runId: string,
  status: Exclude<RunStatus, 'RUNNING'> = 'FINISHED',
  endTime = Date.now(),
): Promise<void> {
  if (!RUN_STATUSES.includes(status) || status === ('RUNNING' as RunStatus))
    invalid(`a run ends FINISHED, FAILED or KILLED, got '${excerpt(status)}'`);
  checkTimestamp(endTime);
  await db.transaction().execute(async (trx) => {
    await touchActiveRun(trx, runId, 'status changes');
    await trx
      .updateTable('runs')
      .set({ status, end_time: endTime })
      .where('id', '=', runId)
      .execute();
  });
}

export async function heartbeat(db: Kysely<Database>, runId: string): Promise<void> {
  await db.transaction().execute((trx) => touchActiveRun(trx, runId, 'heartbeats'));
}

export function keepAlive(db: Kysely<Database>, runId: string, intervalMs = 60_000): () => void {
  const timer = setInterval(() => {
    // A failed beat (run ended meanwhile) is not the caller's error to handle here.
    heartbeat(db, runId).catch(() => clearInterval(timer));
  }, intervalMs);
  timer.unref();
  return () => clearInterval(timer);
}

/** Soft delete (`'deleted'`) or restore (`'active'`). */
export async function setRunLifecycle(
  db: Kysely<Database>,
  runId: string,
  lifecycle: Lifecycle,
): Promise<void> {
  await getRunRow(db, runId);
  await db.updateTable('runs').set({ lifecycle }).where('id', '=', runId).execute();
}

export async function resumeRun(db: Kysely<Database>, runId: string): Promise<void> {
  const row = await getRunRow(db, runId);
  if (row.lifecycle === 'deleted') {
    throw new MenagerieError('RUN_NOT_ACTIVE', `run ${runId} is deleted; restore it first`);
  }
  await db
    .updateTable('runs')
    .set({
      status: 'RUNNING',
      end_time: null,
      owner_pid: process.pid,
      hostname: os.hostname(),
      heartbeat_at: Date.now(),
    })
    .where('id', '=', runId)
    .execute();
}

export async function listChildRuns(db: Kysely<Database>, parentRunId: string): Promise<Run[]> {
  await getRunRow(db, parentRunId);
  const rows = await db
    .selectFrom('runs')
    .selectAll()
    .where('parent_run_id', '=', parentRunId)
    .orderBy('start_time')
    .orderBy('id')
    .execute();
  return hydrate(db, rows);
}

export async function searchRuns(
  db: Kysely<Database>,
  search: RunSearch = {},
): Promise<{ runs: Run[]; nextPageToken: string | null }> {
  const { ids, nextPageToken } = await searchRunIds(db, search);
  return { runs: await runsByIds(db, ids), nextPageToken };
}
