import { randomUUID } from 'node:crypto';
import os from 'node:os';
import type { Kysely, Selectable, Transaction } from 'kysely';
import { excerpt, MenagerieError } from '../core/errors.js';
import type { InputSpec } from '../data/input-spec.js';
import type { Database, ModelVersionTable, StageTransitionAction } from '../data/tables.js';
import { validateModelName, validateVersion } from './model-names.js';
import type { ChangeOptions, ModelRegistryOptions, ModelVersion } from './registry-types.js';

export type Db = Kysely<Database>;
export type Trx = Transaction<Database>;
export type ModelRow = { id: number; name: string };
export type VersionRow = Selectable<ModelVersionTable>;

/** One row for the audit trail; `record` writes a change's rows under one change id. */
export interface TransitionRecord {
  version: number;
  action: StageTransitionAction;
  fromStage?: string | null;
  toStage?: string | null;
  alias?: string | null;
  previousVersion?: number | null;
}

const MAX_PAGE = 1000;

export function encodeCursor(kind: string, value: string | number): string {
  return Buffer.from(`${kind}:${value}`).toString('base64url');
}

export function decodeCursor(kind: 'model' | 'version', cursor: string): string {
  const text = Buffer.from(cursor, 'base64url').toString();
  const prefix = `${kind}:`;
  const value = text.startsWith(prefix) ? text.slice(prefix.length) : undefined;
  if (value === undefined || value === '' || (kind === 'version' && !/^\d{1,15}$/.test(value)))
    throw new MenagerieError(
      'CURSOR_INVALID',
      `'${excerpt(cursor)}' is not a cursor this server issued`,
    );
  return value;
}

export function pageSize(first: number | undefined): number {
  return Math.min(Math.max(Math.trunc(first ?? 50), 1), MAX_PAGE);
}

export function validateTagKey(key: string): string {
  if (typeof key !== 'string' || key.length === 0 || key.length > 250)
    throw new MenagerieError(
      'CONFIG_INVALID',
      `tag key should be 1–250 characters, got ${JSON.stringify(key)}`,
    );
  return key;
}

function defaultUser(): string {
  try {
    return os.userInfo().username;
  } catch {
    return 'unknown';
  }
}

/**
 * What every part of the registry shares: the database, the clock, the default user, and
 * the reads and writes they all make (find or lock a model, find a version, record a change).
 */
export type RegistryStore = ReturnType<typeof createRegistryStore>;

export function createRegistryStore(options: ModelRegistryOptions) {
  const { db } = options;
  const now = options.now ?? Date.now;
  const user = options.user ?? defaultUser();

  const modelNotFound = (name: string) =>
    new MenagerieError('MODEL_NOT_FOUND', `no registered model is named '${excerpt(name)}'`);
  const versionNotFound = (name: string, version: number) =>
    new MenagerieError(
      'MODEL_VERSION_NOT_FOUND',
      `model '${excerpt(name)}' has no version ${version}`,
    );

  async function findModel(q: Db | Trx, name: string): Promise<ModelRow> {
    const row = await q
      .selectFrom('registered_models')
      .select(['id', 'name'])
      .where('name', '=', validateModelName(name))
      .executeTakeFirst();
    if (!row) throw modelNotFound(name);
    return row;
  }

  /**
   * Writes the model's row first thing in a transaction: from here on this transaction
   * holds SQLite's write lock (a row lock on PostgreSQL), so what it reads next stays true
   * until it commits. Other writers wait for it under the busy timeout.
   */
  async function lockModel(trx: Trx, name: string, at: number): Promise<ModelRow> {
    const row = await trx
      .updateTable('registered_models')
      .set({ updated_at: at })
      .where('name', '=', validateModelName(name))
      .returning(['id', 'name'])
      .executeTakeFirst();
    if (!row) throw modelNotFound(name);
    return row;
  }

  async function findVersion(q: Db | Trx, model: ModelRow, version: number): Promise<VersionRow> {
    validateVersion(model.name, version);
    const row = await q
      .selectFrom('model_versions')
      .selectAll()
      .where('model_id', '=', model.id)
      .where('version', '=', version)
      .executeTakeFirst();
    if (!row) throw versionNotFound(model.name, version);
    return row;
  }

  async function aliasesOf(q: Db | Trx, modelId: number) {
    return q
      .selectFrom('model_aliases')
      .select(['alias', 'version'])
      .where('model_id', '=', modelId)
      .orderBy('alias')
      .execute();
  }

  function requireReady(name: string, row: VersionRow, doing: string): void {
    if (row.status !== 'READY')
      throw new MenagerieError(
        'MODEL_VERSION_NOT_READY',
        `cannot ${doing} version ${row.version} of '${name}': it is ${row.status}` +
          (row.status_message ? ` (${row.status_message})` : ''),
      );
  }

  async function record(
    trx: Trx,
    modelId: number,
    at: number,
    change: ChangeOptions,
    rows: readonly TransitionRecord[],
  ): Promise<void> {
    if (rows.length === 0) return;
    const changeId = randomUUID();
    await trx
      .insertInto('stage_transitions')
      .values(
        rows.map((r) => ({
          change_id: changeId,
          model_id: modelId,
          version: r.version,
          action: r.action,
          from_stage: r.fromStage ?? null,
          to_stage: r.toStage ?? null,
          alias: r.alias ?? null,
          previous_version: r.previousVersion ?? null,
          user: change.user ?? user,
          at,
          comment: change.comment ?? null,
        })),
      )
      .execute();
  }

  async function toVersions(
    q: Db | Trx,
    name: string,
    rows: readonly VersionRow[],
  ): Promise<ModelVersion[]> {
    if (rows.length === 0) return [];
    const modelId = rows[0]!.model_id;
    const [tags, aliases] = await Promise.all([
      q
        .selectFrom('model_version_tags')
        .selectAll()
        .where(
          'version_id',
          'in',
          rows.map((r) => r.id),
        )
        .execute(),
      aliasesOf(q, modelId),
    ]);
    return rows.map((r) => ({
      name,
      version: r.version,
      runId: r.run_id,
      source: r.source,
      plugin: r.plugin,
      pluginVersion: r.plugin_version,
      inputSpec: JSON.parse(r.input_spec) as InputSpec,
      labels: JSON.parse(r.labels) as string[],
      metrics: JSON.parse(r.metrics) as Record<string, number>,
      status: r.status,
      statusMessage: r.status_message,
      stage: r.stage,
      aliases: aliases.filter((a) => a.version === r.version).map((a) => a.alias),
      description: r.description,
      tags: Object.fromEntries(
        tags.filter((t) => t.version_id === r.id).map((t) => [t.key, t.value]),
      ),
      createdAt: r.created_at,
      updatedAt: r.updated_at,
      createdBy: r.created_by,
    }));
  }

  async function toVersion(q: Db | Trx, name: string, row: VersionRow): Promise<ModelVersion> {
    return (await toVersions(q, name, [row]))[0]!;
  }

  async function reloadVersion(q: Db | Trx, model: ModelRow, version: number) {
    return toVersion(q, model.name, await findVersion(q, model, version));
  }

  return {
    db,
    now,
    user,
    findModel,
    lockModel,
    findVersion,
    aliasesOf,
    requireReady,
    record,
    toVersions,
    toVersion,
    reloadVersion,
  };
}
