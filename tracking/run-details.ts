import type { Kysely } from 'kysely';
import type { Database } from '../data/tables.js';
import type { Metric } from './tracking-store.js';

/**
 * The latest value of each of a run's metrics with its step and time (the tracking
 * store's `Run.metrics` holds only the values), by key.
 *
 * ```ts
 * const latest = await latestMetrics(db, run.id); // [{ key: 'loss', value: 0.21, step: 9, timestamp }]
 * ```
 */
export async function latestMetrics(db: Kysely<Database>, runId: string): Promise<Metric[]> {
  const rows = await db
    .selectFrom('latest_metrics')
    .select(['key', 'value', 'step', 'timestamp'])
    .where('run_id', '=', runId)
    .orderBy('key')
    .execute();
  // SQLite has no NaN: the store keeps a NaN as null.
  return rows.map((r) => ({ ...r, value: r.value ?? Number.NaN }));
}

/** The registered model versions made from a run, oldest first. */
export async function registeredVersionsOfRun(
  db: Kysely<Database>,
  runId: string,
): Promise<{ name: string; version: number }[]> {
  return db
    .selectFrom('model_versions')
    .innerJoin('registered_models', 'registered_models.id', 'model_versions.model_id')
    .select(['registered_models.name as name', 'model_versions.version as version'])
    .where('model_versions.run_id', '=', runId)
    .orderBy('model_versions.created_at')
    .orderBy('model_versions.id')
    .execute();
}
