import { randomUUID } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import type { Kysely, Selectable, Transaction } from 'kysely';
import { MenagerieError } from '../core/errors.js';
import {
  RUN_STATUSES,
  type Database,
  type ExperimentTable,
  type Lifecycle,
  type RunStatus,
  type RunTable,
} from '../data/tables.js';
import { searchRunIds, type RunSearch } from './run-search.js';

export interface Experiment {
  id: number;
  name: string;
  description: string | null;
  lifecycle: Lifecycle;
  createdAt: number;
  updatedAt: number;
  tags: Record<string, string>;
}

export interface Run {
  /** 32 lowercase hex digits. */
  id: string;
  experimentId: number;
  name: string;
  status: RunStatus;
  startTime: number;
  endTime: number | null;
  parentRunId: string | null;
  /** `file://` URL of the run's artifact folder. */
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

export interface Metric {
  key: string;
  value: number;
  step: number;
  timestamp: number;
}

export interface MetricInput {
  key: string;
  value: number;
  step?: number;
  timestamp?: number;
}

export interface ArtifactEntry {
  /** Relative to the run's artifact folder, with `/` separators. */
  path: string;
  isDir: boolean;
  bytes: number | null;
}

export type ParamValue = string | number | boolean;

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
 * const store = createTrackingStore({ db, artifactRoot: '.menagerie/artifacts' });
 * const experiment = await store.getOrCreateExperiment('faces');
 * const run = await store.createRun({ experimentId: experiment.id, tags: { team: 'x' } });
 * await store.logParams(run.id, { optimizer: 'adam', lr: 0.001 });
 * await store.logMetrics(run.id, { loss: 0.4, val_accuracy: 0.91 }, { step: 1 });
 * await store.endRun(run.id, 'FINISHED');
 * const { runs } = await store.searchRuns({ filter: 'metrics.val_accuracy > 0.9' });
 * ```
 */
export interface TrackingStore {
  createExperiment(
    name: string,
    options?: { description?: string; tags?: Record<string, string> },
  ): Promise<Experiment>;
  /** Throws EXPERIMENT_NOT_FOUND. */
  getExperiment(id: number): Promise<Experiment>;
  /** Deleted experiments included; undefined when none has the name (as MLflow). */
  getExperimentByName(name: string): Promise<Experiment | undefined>;
  /** The active experiment of that name, created if missing; safe against a concurrent creator. */
  getOrCreateExperiment(name: string): Promise<Experiment>;
  listExperiments(options?: { includeDeleted?: boolean }): Promise<Experiment[]>;
  /** Soft delete: its runs leave searches until it is restored. */
  deleteExperiment(id: number): Promise<void>;
  restoreExperiment(id: number): Promise<void>;
  setExperimentTag(id: number, key: string, value: string): Promise<void>;

  /** Starts a RUNNING run owned by this process; without a name it gets one like `brave-otter-42`. */
  createRun(options: {
    experimentId: number;
    name?: string;
    parentRunId?: string;
    tags?: Record<string, string>;
    startTime?: number;
  }): Promise<Run>;
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
    options?: { step?: number; timestamp?: number },
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
  /** Local folder of the run's artifacts. */
  artifactPath(runId: string): Promise<string>;
}

// Limits as MLflow's: keys 250 characters, param values 6000, tag values 8000.
const MAX_KEY = 250;
const MAX_PARAM_VALUE = 6000;
const MAX_TAG_VALUE = 8000;
const MAX_NAME = 255;
const KEY_PATTERN = /^[\p{L}\p{N}_\-. /:]+$/u;
const RUN_ID_PATTERN = /^[0-9a-f]{32}$/;
// Sqlite's default limit on bound parameters is 32766; hydrate pages in slices well below it.
const CHUNK = 500;

function invalid(message: string): never {
  throw new MenagerieError('RUN_DATA_INVALID', message);
}

function checkKey(kind: string, key: string): void {
  if (typeof key !== 'string' || key.length === 0 || key.length > MAX_KEY)
    invalid(
      `${kind} key should be 1–${MAX_KEY} characters, got ${JSON.stringify(key)?.slice(0, 60)}`,
    );
  if (!KEY_PATTERN.test(key) || key.split('/').includes('..') || key.startsWith('/'))
    invalid(
      `${kind} key '${key}' should hold only letters, digits, '_', '-', '.', '/', ':' and spaces`,
    );
}

function checkValue(kind: string, key: string, value: string, max: number): void {
  if (value.length > max)
    invalid(`${kind} '${key}' is ${value.length} characters; the limit is ${max}`);
}

function checkName(name: string): string {
  const trimmed = typeof name === 'string' ? name.trim() : '';
  // eslint-disable-next-line no-control-regex
  if (trimmed.length === 0 || trimmed.length > MAX_NAME || /[\u0000-\u001f\u007f]/.test(trimmed))
    throw new MenagerieError(
      'EXPERIMENT_NAME_INVALID',
      `experiment name should be 1–${MAX_NAME} printable characters, got ${JSON.stringify(name)?.slice(0, 80)}`,
    );
  return trimmed;
}

function checkStep(step: number): void {
  if (!Number.isSafeInteger(step)) invalid(`metric step should be a whole number, got ${step}`);
}

function checkTimestamp(timestamp: number): void {
  if (!Number.isSafeInteger(timestamp))
    invalid(`timestamp should be whole milliseconds, got ${timestamp}`);
}

const ADJECTIVES = [
  'brave',
  'calm',
  'clever',
  'eager',
  'gentle',
  'keen',
  'lucky',
  'merry',
  'quick',
  'quiet',
  'sly',
  'wild',
];
const ANIMALS = [
  'badger',
  'crane',
  'fox',
  'gecko',
  'heron',
  'ibex',
  'lynx',
  'otter',
  'owl',
  'panda',
  'tiger',
  'wolf',
];

function randomRunName(): string {
  const pick = (list: string[]) => list[Math.floor(Math.random() * list.length)]!;
  return `${pick(ADJECTIVES)}-${pick(ANIMALS)}-${Math.floor(Math.random() * 1000)}`;
}

function chunks<T>(items: readonly T[]): T[][] {
  const out: T[][] = [];
  for (let i = 0; i < items.length; i += CHUNK) out.push(items.slice(i, i + CHUNK));
  return out;
}

/** SQLite has no NaN: a NaN is stored as null and read back as NaN. */
function fromStored(value: number | null): number {
  return value === null ? Number.NaN : value;
}

export function createTrackingStore(options: {
  db: Kysely<Database>;
  artifactRoot: string;
}): TrackingStore {
  const { db } = options;
  const artifactRoot = path.resolve(options.artifactRoot);

  async function experimentTags(ids: readonly number[]): Promise<Map<number, [string, string][]>> {
    const byId = new Map<number, [string, string][]>();
    for (const slice of chunks(ids)) {
      const rows = await db
        .selectFrom('experiment_tags')
        .selectAll()
        .where('experiment_id', 'in', slice)
        .orderBy('key')
        .execute();
      for (const r of rows) {
        const list = byId.get(r.experiment_id) ?? [];
        list.push([r.key, r.value]);
        byId.set(r.experiment_id, list);
      }
    }
    return byId;
  }

  async function toExperiments(rows: Selectable<ExperimentTable>[]): Promise<Experiment[]> {
    const tags = await experimentTags(rows.map((r) => r.id));
    return rows.map((r) => ({
      id: r.id,
      name: r.name,
      description: r.description,
      lifecycle: r.lifecycle,
      createdAt: r.created_at,
      updatedAt: r.updated_at,
      tags: Object.fromEntries(tags.get(r.id) ?? []),
    }));
  }

  async function getExperimentRow(
    executor: Kysely<Database>,
    id: number,
  ): Promise<Selectable<ExperimentTable>> {
    const row = Number.isSafeInteger(id)
      ? await executor.selectFrom('experiments').selectAll().where('id', '=', id).executeTakeFirst()
      : undefined;
    if (!row) throw new MenagerieError('EXPERIMENT_NOT_FOUND', `no experiment has id ${id}`);
    return row;
  }

  async function getExperiment(id: number): Promise<Experiment> {
    return (await toExperiments([await getExperimentRow(db, id)]))[0]!;
  }

  async function getExperimentByName(name: string): Promise<Experiment | undefined> {
    const row = await db
      .selectFrom('experiments')
      .selectAll()
      .where('name', '=', typeof name === 'string' ? name.trim() : '')
      .executeTakeFirst();
    return row ? (await toExperiments([row]))[0] : undefined;
  }

  async function getRunRow(
    executor: Kysely<Database>,
    runId: string,
  ): Promise<Selectable<RunTable>> {
    const row = RUN_ID_PATTERN.test(runId)
      ? await executor.selectFrom('runs').selectAll().where('id', '=', runId).executeTakeFirst()
      : undefined;
    if (!row)
      throw new MenagerieError('RUN_NOT_FOUND', `no run has id '${String(runId).slice(0, 64)}'`);
    return row;
  }

  function notActive(row: Selectable<RunTable>, what: string): MenagerieError {
    const state = row.lifecycle === 'deleted' ? 'deleted' : row.status;
    return new MenagerieError(
      'RUN_NOT_ACTIVE',
      `run ${row.id} is ${state}, so it takes no more ${what}; start a new run`,
    );
  }

  /**
   * Inside a write transaction: proves the run RUNNING and refreshes its heartbeat. The
   * update comes first so the transaction holds SQLite's write lock from its first
   * statement (a read first could fail with SQLITE_BUSY when it upgrades).
   */
  async function touchActiveRun(
    trx: Transaction<Database>,
    runId: string,
    what: string,
  ): Promise<void> {
    const result = RUN_ID_PATTERN.test(runId)
      ? await trx
          .updateTable('runs')
          .set({ heartbeat_at: Date.now() })
          .where('id', '=', runId)
          .where('status', '=', 'RUNNING')
          .where('lifecycle', '=', 'active')
          .executeTakeFirst()
      : undefined;
    if (!result || result.numUpdatedRows === 0n) throw notActive(await getRunRow(trx, runId), what);
  }

  async function hydrate(rows: Selectable<RunTable>[]): Promise<Run[]> {
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

  async function runsByIds(ids: readonly string[]): Promise<Run[]> {
    const rows: Selectable<RunTable>[] = [];
    for (const slice of chunks(ids))
      rows.push(...(await db.selectFrom('runs').selectAll().where('id', 'in', slice).execute()));
    const byId = new Map(rows.map((r) => [r.id, r]));
    return hydrate(ids.map((id) => byId.get(id)).filter((r) => r !== undefined));
  }

  async function writeMetrics(runId: string, inputs: readonly MetricInput[]): Promise<void> {
    const now = Date.now();
    const rows = inputs.map((m) => {
      checkKey('metric', m.key);
      if (typeof m.value !== 'number')
        invalid(`metric '${m.key}' should be a number, got ${typeof m.value}`);
      const step = m.step ?? 0;
      const timestamp = m.timestamp ?? now;
      checkStep(step);
      checkTimestamp(timestamp);
      return {
        run_id: runId,
        key: m.key,
        value: Number.isNaN(m.value) ? null : m.value,
        step,
        timestamp,
      };
    });
    if (rows.length === 0) return;
    await db.transaction().execute(async (trx) => {
      await touchActiveRun(trx, runId, 'metrics');
      for (const slice of chunks(rows)) await trx.insertInto('metrics').values(slice).execute();
      for (const row of rows) {
        // Latest = highest step, then newest timestamp, as MLflow's latest_metrics.
        await trx
          .insertInto('latest_metrics')
          .values(row)
          .onConflict((oc) =>
            oc
              .columns(['run_id', 'key'])
              .doUpdateSet((eb) => ({
                value: eb.ref('excluded.value'),
                step: eb.ref('excluded.step'),
                timestamp: eb.ref('excluded.timestamp'),
              }))
              .where((eb) =>
                eb.or([
                  eb('excluded.step', '>', eb.ref('latest_metrics.step')),
                  eb.and([
                    eb('excluded.step', '=', eb.ref('latest_metrics.step')),
                    eb('excluded.timestamp', '>=', eb.ref('latest_metrics.timestamp')),
                  ]),
                ]),
              ),
          )
          .execute();
      }
    });
  }

  async function heartbeat(runId: string): Promise<void> {
    await db.transaction().execute((trx) => touchActiveRun(trx, runId, 'heartbeats'));
  }

  async function runArtifactDir(runId: string): Promise<string> {
    return fileURLToPath((await getRunRow(db, runId)).artifact_uri);
  }

  function resolveArtifactPath(root: string, artifactPath: string | undefined): string {
    if (!artifactPath) return root;
    const target = path.resolve(root, artifactPath);
    if (path.isAbsolute(artifactPath) || (target !== root && !target.startsWith(root + path.sep)))
      throw new MenagerieError(
        'RUN_ARTIFACT_INVALID',
        `artifact path '${artifactPath}' should be relative and stay inside the run's artifact folder`,
      );
    return target;
  }

  async function setLifecycle(runId: string, lifecycle: Lifecycle): Promise<void> {
    await getRunRow(db, runId);
    await db.updateTable('runs').set({ lifecycle }).where('id', '=', runId).execute();
  }

  async function setExperimentLifecycle(id: number, lifecycle: Lifecycle): Promise<void> {
    await getExperimentRow(db, id);
    await db
      .updateTable('experiments')
      .set({ lifecycle, updated_at: Date.now() })
      .where('id', '=', id)
      .execute();
  }

  return {
    async createExperiment(name, options = {}) {
      const trimmed = checkName(name);
      for (const [key, value] of Object.entries(options.tags ?? {})) {
        checkKey('tag', key);
        checkValue('tag', key, value, MAX_TAG_VALUE);
      }
      const existing = await getExperimentByName(trimmed);
      if (existing)
        throw new MenagerieError(
          'EXPERIMENT_EXISTS',
          existing.lifecycle === 'deleted'
            ? `experiment '${trimmed}' exists and is deleted; restore it or pick another name`
            : `experiment '${trimmed}' already exists (id ${existing.id})`,
        );
      const now = Date.now();
      const id = await db.transaction().execute(async (trx) => {
        const row = await trx
          .insertInto('experiments')
          .values({
            name: trimmed,
            description: options.description ?? null,
            created_at: now,
            updated_at: now,
          })
          .returning('id')
          .executeTakeFirstOrThrow();
        const tags = Object.entries(options.tags ?? {});
        if (tags.length > 0)
          await trx
            .insertInto('experiment_tags')
            .values(tags.map(([key, value]) => ({ experiment_id: row.id, key, value })))
            .execute();
        return row.id;
      });
      return getExperiment(id);
    },

    getExperiment,
    getExperimentByName,

    async getOrCreateExperiment(name) {
      const trimmed = checkName(name);
      const now = Date.now();
      await db
        .insertInto('experiments')
        .values({ name: trimmed, description: null, created_at: now, updated_at: now })
        .onConflict((oc) => oc.column('name').doNothing())
        .execute();
      const experiment = (await getExperimentByName(trimmed))!;
      if (experiment.lifecycle === 'deleted')
        throw new MenagerieError(
          'EXPERIMENT_NOT_ACTIVE',
          `experiment '${trimmed}' is deleted; restore it or log to another experiment`,
        );
      return experiment;
    },

    async listExperiments({ includeDeleted = false } = {}) {
      let query = db.selectFrom('experiments').selectAll().orderBy('id');
      if (!includeDeleted) query = query.where('lifecycle', '=', 'active');
      return toExperiments(await query.execute());
    },

    deleteExperiment: (id) => setExperimentLifecycle(id, 'deleted'),
    restoreExperiment: (id) => setExperimentLifecycle(id, 'active'),

    async setExperimentTag(id, key, value) {
      checkKey('tag', key);
      checkValue('tag', key, String(value), MAX_TAG_VALUE);
      await getExperimentRow(db, id);
      await db
        .insertInto('experiment_tags')
        .values({ experiment_id: id, key, value: String(value) })
        .onConflict((oc) =>
          oc.columns(['experiment_id', 'key']).doUpdateSet({ value: String(value) }),
        )
        .execute();
    },

    async createRun({ experimentId, name, parentRunId, tags = {}, startTime }) {
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
      const dir = path.join(artifactRoot, String(experimentId), id, 'artifacts');
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
            artifact_uri: pathToFileURL(dir).href,
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
      return (await runsByIds([id]))[0]!;
    },

    async getRun(runId) {
      return (await hydrate([await getRunRow(db, runId)]))[0]!;
    },

    async logParams(runId, params) {
      const entries = Object.entries(params).map(([key, value]): [string, string] => {
        checkKey('param', key);
        const text = String(value);
        checkValue('param', key, text, MAX_PARAM_VALUE);
        return [key, text];
      });
      if (entries.length === 0) return;
      await db.transaction().execute(async (trx) => {
        await touchActiveRun(trx, runId, 'params');
        const logged = new Map<string, string>();
        for (const slice of chunks(entries.map(([k]) => k))) {
          const rows = await trx
            .selectFrom('params')
            .select(['key', 'value'])
            .where('run_id', '=', runId)
            .where('key', 'in', slice)
            .execute();
          for (const r of rows) logged.set(r.key, r.value);
        }
        const fresh = entries.filter(([key, value]) => {
          const old = logged.get(key);
          if (old !== undefined && old !== value)
            throw new MenagerieError(
              'PARAM_CONFLICT',
              `param '${key}' of run ${runId} is '${old.slice(0, 100)}'; params are immutable, ` +
                `so it cannot become '${value.slice(0, 100)}'`,
            );
          return old === undefined;
        });
        for (const slice of chunks(fresh))
          await trx
            .insertInto('params')
            .values(slice.map(([key, value]) => ({ run_id: runId, key, value })))
            .execute();
      });
    },

    logMetric: (runId, key, value, step = 0, timestamp) =>
      writeMetrics(runId, [
        { key, value, step, ...(timestamp === undefined ? {} : { timestamp }) },
      ]),

    logMetrics(runId, metrics, options = {}) {
      const list: readonly MetricInput[] = Array.isArray(metrics)
        ? metrics
        : Object.entries(metrics).map(([key, value]) => ({ key, value }));
      return writeMetrics(
        runId,
        list.map((m) => ({
          ...m,
          step: m.step ?? options.step ?? 0,
          timestamp: m.timestamp ?? options.timestamp ?? Date.now(),
        })),
      );
    },

    async getMetricHistory(runId, key) {
      await getRunRow(db, runId);
      const rows = await db
        .selectFrom('metrics')
        .select(['key', 'value', 'step', 'timestamp'])
        .where('run_id', '=', runId)
        .where('key', '=', key)
        .orderBy('step')
        .orderBy('timestamp')
        .orderBy('id')
        .execute();
      return rows.map((r) => ({ ...r, value: fromStored(r.value) }));
    },

    async setTag(runId, key, value) {
      checkKey('tag', key);
      const text = String(value);
      checkValue('tag', key, text, MAX_TAG_VALUE);
      const row = await getRunRow(db, runId);
      if (row.lifecycle === 'deleted') throw notActive(row, 'tags');
      await db
        .insertInto('run_tags')
        .values({ run_id: runId, key, value: text })
        .onConflict((oc) => oc.columns(['run_id', 'key']).doUpdateSet({ value: text }))
        .execute();
    },

    async endRun(runId, status = 'FINISHED', endTime = Date.now()) {
      if (!RUN_STATUSES.includes(status) || status === ('RUNNING' as RunStatus))
        invalid(`a run ends FINISHED, FAILED or KILLED, got '${status}'`);
      checkTimestamp(endTime);
      await db.transaction().execute(async (trx) => {
        await touchActiveRun(trx, runId, 'status changes');
        await trx
          .updateTable('runs')
          .set({ status, end_time: endTime })
          .where('id', '=', runId)
          .execute();
      });
    },

    heartbeat,

    keepAlive(runId, intervalMs = 60_000) {
      const timer = setInterval(() => {
        // A failed beat (run ended meanwhile) is not the caller's error to handle here.
        heartbeat(runId).catch(() => clearInterval(timer));
      }, intervalMs);
      timer.unref();
      return () => clearInterval(timer);
    },

    deleteRun: (runId) => setLifecycle(runId, 'deleted'),
    restoreRun: (runId) => setLifecycle(runId, 'active'),

    async resumeRun(runId) {
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
    },

    async listChildRuns(parentRunId) {
      await getRunRow(db, parentRunId);
      const rows = await db
        .selectFrom('runs')
        .selectAll()
        .where('parent_run_id', '=', parentRunId)
        .orderBy('start_time')
        .orderBy('id')
        .execute();
      return hydrate(rows);
    },

    async searchRuns(search = {}) {
      const { ids, nextPageToken } = await searchRunIds(db, search);
      return { runs: await runsByIds(ids), nextPageToken };
    },

    async logArtifact(runId, localPath, artifactPath) {
      const row = await getRunRow(db, runId);
      if (row.status !== 'RUNNING' || row.lifecycle !== 'active') throw notActive(row, 'artifacts');
      const source = path.resolve(localPath);
      if (!fs.existsSync(source))
        throw new MenagerieError('RUN_ARTIFACT_INVALID', `no file or folder at ${source} to log`);
      const root = fileURLToPath(row.artifact_uri);
      const folder = resolveArtifactPath(root, artifactPath);
      const target = path.join(folder, path.basename(source));
      fs.mkdirSync(folder, { recursive: true });
      fs.cpSync(source, target, { recursive: true });
      return path.relative(root, target).split(path.sep).join('/');
    },

    async listArtifacts(runId, artifactPath) {
      const root = await runArtifactDir(runId);
      const folder = resolveArtifactPath(root, artifactPath);
      if (!fs.existsSync(folder)) return [];
      return fs
        .readdirSync(folder, { withFileTypes: true })
        .map((entry) => {
          const full = path.join(folder, entry.name);
          const isDir = entry.isDirectory();
          return {
            path: path.relative(root, full).split(path.sep).join('/'),
            isDir,
            bytes: isDir ? null : fs.statSync(full).size,
          };
        })
        .sort((a, b) => a.path.localeCompare(b.path));
    },

    artifactPath: runArtifactDir,
  };
}
