import type { Kysely, Selectable } from 'kysely';
import { MenagerieError } from '../core/errors.js';
import { isUniqueViolation } from '../data/sql-errors.js';
import type { Database, ExperimentTable, Lifecycle } from '../data/tables.js';
import { chunks } from './sql-chunks.js';
import { checkKey, checkName, checkValue, MAX_TAG_VALUE } from './tracking-limits.js';

export interface Experiment {
  id: number;
  name: string;
  description: string | null;
  lifecycle: Lifecycle;
  createdAt: number;
  updatedAt: number;
  tags: Record<string, string>;
}

export interface CreateExperimentOptions {
  description?: string;
  tags?: Record<string, string>;
}

export interface ListExperimentsOptions {
  includeDeleted?: boolean;
}

async function experimentTags(
  db: Kysely<Database>,
  ids: readonly number[],
): Promise<Map<number, [string, string][]>> {
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

async function toExperiments(
  db: Kysely<Database>,
  rows: Selectable<ExperimentTable>[],
): Promise<Experiment[]> {
  const tags = await experimentTags(
    db,
    rows.map((r) => r.id),
  );
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

/** Throws EXPERIMENT_NOT_FOUND. */
export async function getExperimentRow(
  executor: Kysely<Database>,
  id: number,
): Promise<Selectable<ExperimentTable>> {
  const row = Number.isSafeInteger(id)
    ? await executor.selectFrom('experiments').selectAll().where('id', '=', id).executeTakeFirst()
    : undefined;
  if (!row) throw new MenagerieError('EXPERIMENT_NOT_FOUND', `no experiment has id ${id}`);
  return row;
}

export async function getExperiment(db: Kysely<Database>, id: number): Promise<Experiment> {
  return (await toExperiments(db, [await getExperimentRow(db, id)]))[0]!;
}

export async function getExperimentByName(
  db: Kysely<Database>,
  name: string,
): Promise<Experiment | undefined> {
  const row = await db
    .selectFrom('experiments')
    .selectAll()
    .where('name', '=', typeof name === 'string' ? name.trim() : '')
    .executeTakeFirst();
  return row ? (await toExperiments(db, [row]))[0] : undefined;
}

export async function createExperiment(
  db: Kysely<Database>,
  name: string,
  options: CreateExperimentOptions = {},
): Promise<Experiment> {
  const trimmed = checkName(name);
  for (const [key, value] of Object.entries(options.tags ?? {})) {
    checkKey('tag', key);
    checkValue('tag', key, value, MAX_TAG_VALUE);
  }
  const existing = await getExperimentByName(db, trimmed);
  if (existing)
    throw new MenagerieError(
      'EXPERIMENT_EXISTS',
      existing.lifecycle === 'deleted'
        ? `experiment '${trimmed}' exists and is deleted; restore it or pick another name`
        : `experiment '${trimmed}' already exists (id ${existing.id})`,
    );
  const now = Date.now();
  const id = await insertExperiment(db, trimmed, options, now).catch((error: unknown) => {
    // A concurrent creator took the name between the check and the insert.
    if (isUniqueViolation(error))
      throw new MenagerieError('EXPERIMENT_EXISTS', `experiment '${trimmed}' already exists`);
    throw error;
  });
  return getExperiment(db, id);
}

function insertExperiment(
  db: Kysely<Database>,
  trimmed: string,
  options: CreateExperimentOptions,
  now: number,
): Promise<number> {
  return db.transaction().execute(async (trx) => {
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
}

export async function getOrCreateExperiment(
  db: Kysely<Database>,
  name: string,
): Promise<Experiment> {
  const trimmed = checkName(name);
  const now = Date.now();
  await db
    .insertInto('experiments')
    .values({ name: trimmed, description: null, created_at: now, updated_at: now })
    .onConflict((oc) => oc.column('name').doNothing())
    .execute();
  const experiment = (await getExperimentByName(db, trimmed))!;
  if (experiment.lifecycle === 'deleted')
    throw new MenagerieError(
      'EXPERIMENT_NOT_ACTIVE',
      `experiment '${trimmed}' is deleted; restore it or log to another experiment`,
    );
  return experiment;
}

export async function listExperiments(
  db: Kysely<Database>,
  { includeDeleted = false }: ListExperimentsOptions = {},
): Promise<Experiment[]> {
  let query = db.selectFrom('experiments').selectAll().orderBy('id');
  if (!includeDeleted) query = query.where('lifecycle', '=', 'active');
  return toExperiments(db, await query.execute());
}

/** Soft delete (`'deleted'`) or restore (`'active'`). */
export async function setExperimentLifecycle(
  db: Kysely<Database>,
  id: number,
  lifecycle: Lifecycle,
): Promise<void> {
  await getExperimentRow(db, id);
  await db
    .updateTable('experiments')
    .set({ lifecycle, updated_at: Date.now() })
    .where('id', '=', id)
    .execute();
}

export async function setExperimentTag(
  db: Kysely<Database>,
  id: number,
  key: string,
  value: string,
): Promise<void> {
  checkKey('tag', key);
  checkValue('tag', key, String(value), MAX_TAG_VALUE);
  await getExperimentRow(db, id);
  await db
    .insertInto('experiment_tags')
    .values({ experiment_id: id, key, value: String(value) })
    .onConflict((oc) => oc.columns(['experiment_id', 'key']).doUpdateSet({ value: String(value) }))
    .execute();
}
