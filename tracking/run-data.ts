import type { Kysely } from 'kysely';
import { MenagerieError } from '../core/errors.js';
import type { Database } from '../data/tables.js';
import { getRunRow, notActive, touchActiveRun } from './run-row.js';
import { chunks } from './sql-chunks.js';
import {
  checkKey,
  checkStep,
  checkTimestamp,
  checkValue,
  invalid,
  MAX_PARAM_VALUE,
  MAX_TAG_VALUE,
} from './tracking-limits.js';

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

/** The step and timestamp of a logged metric that names none. */
export interface LogMetricsOptions {
  step?: number;
  timestamp?: number;
}

export type ParamValue = string | number | boolean;

/** SQLite has no NaN: a NaN is stored as null and read back as NaN. */
export function fromStored(value: number | null): number {
  return value === null ? Number.NaN : value;
}

export async function logParams(
  db: Kysely<Database>,
  runId: string,
  params: Record<string, ParamValue>,
): Promise<void> {
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
}

export function logMetric(
  db: Kysely<Database>,
  runId: string,
  key: string,
  value: number,
  step = 0,
  timestamp?: number,
): Promise<void> {
  return writeMetrics(db, runId, [
    { key, value, step, ...(timestamp === undefined ? {} : { timestamp }) },
  ]);
}

export function logMetrics(
  db: Kysely<Database>,
  runId: string,
  metrics: Record<string, number> | readonly MetricInput[],
  options: LogMetricsOptions = {},
): Promise<void> {
  const list: readonly MetricInput[] = Array.isArray(metrics)
    ? metrics
    : Object.entries(metrics).map(([key, value]) => ({ key, value }));
  return writeMetrics(
    db,
    runId,
    list.map((m) => ({
      ...m,
      step: m.step ?? options.step ?? 0,
      timestamp: m.timestamp ?? options.timestamp ?? Date.now(),
    })),
  );
}

async function writeMetrics(
  db: Kysely<Database>,
  runId: string,
  inputs: readonly MetricInput[],
): Promise<void> {
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

export async function getMetricHistory(
  db: Kysely<Database>,
  runId: string,
  key: string,
): Promise<Metric[]> {
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
}

/** Tags are annotations: unlike params and metrics, an ended run still takes them (as MLflow). */
export async function setTag(
  db: Kysely<Database>,
  runId: string,
  key: string,
  value: string,
): Promise<void> {
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
}
