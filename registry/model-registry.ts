import { randomUUID } from 'node:crypto';
import os from 'node:os';
import type { Kysely, Selectable, Transaction } from 'kysely';
import { MenagerieError } from '../core/errors.js';
import type { InputSpec } from '../data/input-spec.js';
import type {
  Database,
  ModelStage,
  ModelVersionStatus,
  ModelVersionTable,
  StageTransitionAction,
} from '../data/tables.js';
import {
  ACTIVE_STAGES,
  CHAMPION,
  parseStage,
  validateAlias,
  validateModelName,
  validateVersion,
} from './model-names.js';
import { parseModelUri } from './model-uri.js';

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

/**
 * MLflow's Model Registry over the Menagerie database: registered models, numbered
 * versions, stages, aliases, and an audit trail of every change (who, when, from, to, why).
 *
 * Every change runs in one transaction whose first statement writes the model's row, so
 * concurrent writers (other connections, other processes) queue on SQLite's write lock
 * instead of reading a state that is stale by the time they write: two promotions never
 * leave two Production versions or no champion.
 *
 * ```ts
 * import { openDatabase } from './data/database.js';
 * import { createModelRegistry } from './registry/model-registry.js';
 * const { db } = await openDatabase('.menagerie/menagerie.db');
 * const registry = createModelRegistry({ db, user: 'ana' });
 * const v = await registry.createModelVersion({
 *   name: 'faces', source: 'file:///models/run-1', plugin: 'menagerie:cnn', labels: ['cat', 'dog'],
 *   inputSpec: { size: 64, channels: 3, fit: 'fill', scale: 1 / 255, offset: 0 },
 * });
 * await registry.setVersionStatus('faces', v.version, 'READY');
 * await registry.promoteChampion('faces', v.version, { comment: 'beats v1 on val' });
 * await registry.resolveModelUri('models:/faces@champion'); // the same version
 * ```
 */
export interface ModelRegistry {
  createRegisteredModel(
    name: string,
    options?: { description?: string; tags?: Record<string, string> },
  ): Promise<RegisteredModel>;
  getRegisteredModel(name: string): Promise<RegisteredModel>;
  /** Models by name; `nameLike` is an SQL LIKE pattern (`%faces%`), case-insensitive. */
  listRegisteredModels(options?: {
    nameLike?: string;
    first?: number;
    after?: string | null;
  }): Promise<Page<RegisteredModel>>;
  renameRegisteredModel(name: string, newName: string): Promise<RegisteredModel>;
  updateRegisteredModel(
    name: string,
    changes: { description: string | null },
  ): Promise<RegisteredModel>;
  setRegisteredModelTag(name: string, key: string, value: string): Promise<void>;
  /** Returns whether the tag existed. */
  deleteRegisteredModelTag(name: string, key: string): Promise<boolean>;
  /**
   * Deletes the model, its versions, aliases and history. Refused (MODEL_IN_USE) while it
   * has a champion or a Production version, unless `force`.
   */
  deleteRegisteredModel(name: string, options?: { force?: boolean }): Promise<void>;

  /** A new version, PENDING until `setVersionStatus` says READY or FAILED. */
  createModelVersion(input: NewModelVersion): Promise<ModelVersion>;
  /**
   * A version's status. A version that is staged, in Production or aliased must stay
   * READY (MODEL_VERSION_IN_USE), since something serves or is about to serve it.
   */
  setVersionStatus(
    name: string,
    version: number,
    status: ModelVersionStatus,
    message?: string | null,
  ): Promise<ModelVersion>;
  getModelVersion(name: string, version: number): Promise<ModelVersion>;
  /** Newest first; `stage` filters. */
  listVersions(
    name: string,
    options?: { stage?: string; first?: number; after?: string | null },
  ): Promise<Page<ModelVersion>>;
  updateVersion(
    name: string,
    version: number,
    changes: { description: string | null },
  ): Promise<ModelVersion>;
  setVersionTag(name: string, version: number, key: string, value: string): Promise<void>;
  deleteVersionTag(name: string, version: number, key: string): Promise<boolean>;
  /**
   * Deletes a version, and like MLflow the aliases that point to it; its number is never
   * reused and its history stays. Refused for the champion always, and for an aliased or
   * Production version unless `force` (MODEL_VERSION_IN_USE).
   */
  deleteModelVersion(
    name: string,
    version: number,
    options?: ChangeOptions & { force?: boolean },
  ): Promise<void>;

  /**
   * Moves a version to a stage (any case). With `archiveExisting` (only for Staging and
   * Production, as in MLflow) the stage's other holders become Archived in the same
   * transaction. Staging and Production need a READY version; the champion cannot leave
   * Production, nor be archived by another version's move (use `promoteChampion`).
   */
  transitionStage(
    name: string,
    version: number,
    stage: string,
    options?: ChangeOptions & { archiveExisting?: boolean },
  ): Promise<ModelVersion>;
  /** Points an alias at a READY version, moving it if it pointed elsewhere. */
  setAlias(
    name: string,
    alias: string,
    version: number,
    options?: ChangeOptions,
  ): Promise<ModelVersion>;
  /** Removes an alias, `champion` included (serving then has no model to follow). */
  deleteAlias(name: string, alias: string, options?: ChangeOptions): Promise<void>;
  getVersionByAlias(name: string, alias: string): Promise<ModelVersion>;
  /**
   * In one transaction: `champion` moves to the version, the version becomes Production
   * and every other Production version becomes Archived. Repeating it changes nothing.
   */
  promoteChampion(name: string, version: number, options?: ChangeOptions): Promise<PromotionResult>;
  /**
   * The version a `models:/` URI names: `/3`, `@alias`, `/<stage>` (its highest version)
   * or `/latest` (the highest READY version).
   */
  resolveModelUri(uri: string): Promise<ModelVersion>;
  /** The audit trail, oldest first, of the model or one of its versions. */
  getTransitions(name: string, version?: number): Promise<StageTransition[]>;
}

type Db = Kysely<Database>;
type Trx = Transaction<Database>;
type ModelRow = { id: number; name: string };
type VersionRow = Selectable<ModelVersionTable>;

const MAX_PAGE = 1000;

function encodeCursor(kind: string, value: string | number): string {
  return Buffer.from(`${kind}:${value}`).toString('base64url');
}

function decodeCursor(kind: 'model' | 'version', cursor: string): string {
  const text = Buffer.from(cursor, 'base64url').toString();
  const prefix = `${kind}:`;
  const value = text.startsWith(prefix) ? text.slice(prefix.length) : undefined;
  if (value === undefined || value === '' || (kind === 'version' && !/^\d{1,15}$/.test(value)))
    throw new MenagerieError('CURSOR_INVALID', `'${cursor}' is not a cursor this server issued`);
  return value;
}

function pageSize(first: number | undefined): number {
  return Math.min(Math.max(Math.trunc(first ?? 50), 1), MAX_PAGE);
}

function validateTagKey(key: string): string {
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

export function createModelRegistry(options: {
  db: Kysely<Database>;
  /** Recorded as who made a change when a call names nobody (default: the OS user). */
  user?: string;
  /** Milliseconds since the epoch; tests pin it. */
  now?: () => number;
}): ModelRegistry {
  const { db } = options;
  const now = options.now ?? Date.now;
  const registryUser = options.user ?? defaultUser();

  const modelNotFound = (name: string) =>
    new MenagerieError('MODEL_NOT_FOUND', `no registered model is named '${name}'`);
  const versionNotFound = (name: string, version: number) =>
    new MenagerieError('MODEL_VERSION_NOT_FOUND', `model '${name}' has no version ${version}`);

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

  interface TransitionRecord {
    version: number;
    action: StageTransitionAction;
    fromStage?: string | null;
    toStage?: string | null;
    alias?: string | null;
    previousVersion?: number | null;
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
          user: change.user ?? registryUser,
          at,
          comment: change.comment ?? null,
        })),
      )
      .execute();
  }

  async function toModels(q: Db | Trx, ids: readonly number[]): Promise<RegisteredModel[]> {
    if (ids.length === 0) return [];
    const [rows, tags, aliases, latest] = await Promise.all([
      q.selectFrom('registered_models').selectAll().where('id', 'in', ids).execute(),
      q.selectFrom('registered_model_tags').selectAll().where('model_id', 'in', ids).execute(),
      q
        .selectFrom('model_aliases')
        .selectAll()
        .where('model_id', 'in', ids)
        .orderBy('alias')
        .execute(),
      q
        .selectFrom('model_versions')
        .select(['model_id', (eb) => eb.fn.max('version').as('latest')])
        .where('model_id', 'in', ids)
        .groupBy('model_id')
        .execute(),
    ]);
    const byId = new Map(rows.map((r) => [r.id, r]));
    return ids.map((id) => {
      const r = byId.get(id)!;
      return {
        name: r.name,
        description: r.description,
        tags: Object.fromEntries(
          tags.filter((t) => t.model_id === id).map((t) => [t.key, t.value]),
        ),
        aliases: Object.fromEntries(
          aliases.filter((a) => a.model_id === id).map((a) => [a.alias, a.version]),
        ),
        latestVersion: latest.find((l) => l.model_id === id)?.latest ?? null,
        createdAt: r.created_at,
        updatedAt: r.updated_at,
      };
    });
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

  async function setStage(
    trx: Trx,
    model: ModelRow,
    version: number,
    stage: ModelStage,
    at: number,
  ): Promise<void> {
    await trx
      .updateTable('model_versions')
      .set({ stage, updated_at: at })
      .where('model_id', '=', model.id)
      .where('version', '=', version)
      .execute();
  }

  const registry: ModelRegistry = {
    async createRegisteredModel(name, opts = {}) {
      validateModelName(name);
      return db.transaction().execute(async (trx) => {
        const at = now();
        const inserted = await trx
          .insertInto('registered_models')
          .values({
            name,
            description: opts.description ?? null,
            created_at: at,
            updated_at: at,
          })
          .onConflict((oc) => oc.column('name').doNothing())
          .returning('id')
          .executeTakeFirst();
        if (!inserted)
          throw new MenagerieError('MODEL_EXISTS', `a registered model named '${name}' exists`);
        const tags = Object.entries(opts.tags ?? {});
        if (tags.length > 0)
          await trx
            .insertInto('registered_model_tags')
            .values(
              tags.map(([key, value]) => ({
                model_id: inserted.id,
                key: validateTagKey(key),
                value,
              })),
            )
            .execute();
        return (await toModels(trx, [inserted.id]))[0]!;
      });
    },

    async getRegisteredModel(name) {
      const model = await findModel(db, name);
      return (await toModels(db, [model.id]))[0]!;
    },

    async listRegisteredModels(opts = {}) {
      const first = pageSize(opts.first);
      let query = db
        .selectFrom('registered_models')
        .select(['id', 'name'])
        .orderBy('name')
        .limit(first + 1);
      if (opts.nameLike) query = query.where('name', 'like', opts.nameLike);
      if (opts.after) query = query.where('name', '>', decodeCursor('model', opts.after));
      const rows = await query.execute();
      const items = await toModels(
        db,
        rows.slice(0, first).map((r) => r.id),
      );
      const hasNextPage = rows.length > first;
      const last = items.at(-1);
      return {
        items,
        hasNextPage,
        endCursor: last && hasNextPage ? encodeCursor('model', last.name) : null,
      };
    },

    async renameRegisteredModel(name, newName) {
      validateModelName(newName);
      return db.transaction().execute(async (trx) => {
        const model = await lockModel(trx, name, now());
        if (newName !== name) {
          const taken = await trx
            .selectFrom('registered_models')
            .select('id')
            .where('name', '=', newName)
            .executeTakeFirst();
          if (taken)
            throw new MenagerieError(
              'MODEL_EXISTS',
              `a registered model named '${newName}' exists`,
            );
          await trx
            .updateTable('registered_models')
            .set({ name: newName })
            .where('id', '=', model.id)
            .execute();
        }
        return (await toModels(trx, [model.id]))[0]!;
      });
    },

    async updateRegisteredModel(name, changes) {
      return db.transaction().execute(async (trx) => {
        const model = await lockModel(trx, name, now());
        await trx
          .updateTable('registered_models')
          .set({ description: changes.description })
          .where('id', '=', model.id)
          .execute();
        return (await toModels(trx, [model.id]))[0]!;
      });
    },

    async setRegisteredModelTag(name, key, value) {
      validateTagKey(key);
      await db.transaction().execute(async (trx) => {
        const model = await lockModel(trx, name, now());
        await trx
          .insertInto('registered_model_tags')
          .values({ model_id: model.id, key, value: String(value) })
          .onConflict((oc) => oc.columns(['model_id', 'key']).doUpdateSet({ value: String(value) }))
          .execute();
      });
    },

    async deleteRegisteredModelTag(name, key) {
      return db.transaction().execute(async (trx) => {
        const model = await lockModel(trx, name, now());
        const result = await trx
          .deleteFrom('registered_model_tags')
          .where('model_id', '=', model.id)
          .where('key', '=', key)
          .executeTakeFirst();
        return Number(result.numDeletedRows) > 0;
      });
    },

    async deleteRegisteredModel(name, opts = {}) {
      await db.transaction().execute(async (trx) => {
        const model = await lockModel(trx, name, now());
        if (!opts.force) {
          const champion = (await aliasesOf(trx, model.id)).find((a) => a.alias === CHAMPION);
          const production = await trx
            .selectFrom('model_versions')
            .select('version')
            .where('model_id', '=', model.id)
            .where('stage', '=', 'Production')
            .execute();
          if (champion || production.length > 0)
            throw new MenagerieError(
              'MODEL_IN_USE',
              `model '${name}' is serving (` +
                [
                  champion ? `champion is version ${champion.version}` : '',
                  production.length
                    ? `Production: ${production.map((p) => p.version).join(', ')}`
                    : '',
                ]
                  .filter(Boolean)
                  .join('; ') +
                '); archive it and delete the champion alias first, or force the deletion',
            );
        }
        await trx.deleteFrom('registered_models').where('id', '=', model.id).execute();
      });
    },

    async createModelVersion(input) {
      const name = validateModelName(input.name);
      if (!input.source) throw new MenagerieError('MODEL_ARTIFACT_INVALID', 'source is empty');
      if (!input.plugin) throw new MenagerieError('MODEL_ARTIFACT_INVALID', 'plugin name is empty');
      if (
        !Array.isArray(input.labels) ||
        input.labels.length === 0 ||
        input.labels.some((l) => typeof l !== 'string' || l === '')
      )
        throw new MenagerieError(
          'MODEL_ARTIFACT_INVALID',
          `labels should be a non-empty list of class names, got ${JSON.stringify(input.labels)}`,
        );
      if (typeof input.inputSpec !== 'object' || input.inputSpec === null)
        throw new MenagerieError('MODEL_ARTIFACT_INVALID', 'input spec is missing');
      const tags = Object.entries(input.tags ?? {});
      tags.forEach(([key]) => validateTagKey(key));
      return db.transaction().execute(async (trx) => {
        const at = now();
        // The insert (or the no-op on conflict) takes the write lock, then the counter
        // hands out the number: two registrations never get the same version.
        await trx
          .insertInto('registered_models')
          .values({ name, description: null, created_at: at, updated_at: at })
          .onConflict((oc) => oc.column('name').doNothing())
          .execute();
        const model = await trx
          .updateTable('registered_models')
          .set((eb) => ({ last_version: eb('last_version', '+', 1), updated_at: at }))
          .where('name', '=', name)
          .returning(['id', 'name', 'last_version'])
          .executeTakeFirstOrThrow();
        const row = await trx
          .insertInto('model_versions')
          .values({
            model_id: model.id,
            version: model.last_version,
            run_id: input.runId ?? null,
            source: input.source,
            plugin: input.plugin,
            plugin_version: input.pluginVersion ?? null,
            input_spec: JSON.stringify(input.inputSpec),
            labels: JSON.stringify(input.labels),
            metrics: JSON.stringify(input.metrics ?? {}),
            status: 'PENDING',
            status_message: null,
            description: input.description ?? null,
            created_at: at,
            updated_at: at,
            created_by: input.createdBy ?? registryUser,
          })
          .returningAll()
          .executeTakeFirstOrThrow();
        if (tags.length > 0)
          await trx
            .insertInto('model_version_tags')
            .values(tags.map(([key, value]) => ({ version_id: row.id, key, value })))
            .execute();
        await record(trx, model.id, at, { user: input.createdBy ?? registryUser }, [
          { version: row.version, action: 'create', toStage: 'None' },
        ]);
        return toVersion(trx, name, row);
      });
    },

    async setVersionStatus(name, version, status, message = null) {
      if (!['PENDING', 'READY', 'FAILED'].includes(status))
        throw new MenagerieError(
          'CONFIG_INVALID',
          `status should be PENDING, READY or FAILED, got '${status}'`,
        );
      return db.transaction().execute(async (trx) => {
        const at = now();
        const model = await lockModel(trx, name, at);
        const row = await findVersion(trx, model, version);
        if (status !== 'READY') {
          const aliases = (await aliasesOf(trx, model.id)).filter((a) => a.version === version);
          if (ACTIVE_STAGES.includes(row.stage) || aliases.length > 0)
            throw new MenagerieError(
              'MODEL_VERSION_IN_USE',
              `version ${version} of '${name}' is ${row.stage}` +
                (aliases.length ? ` with aliases ${aliases.map((a) => a.alias).join(', ')}` : '') +
                `; it cannot become ${status}`,
            );
        }
        await trx
          .updateTable('model_versions')
          .set({ status, status_message: message, updated_at: at })
          .where('id', '=', row.id)
          .execute();
        return reloadVersion(trx, model, version);
      });
    },

    async getModelVersion(name, version) {
      const model = await findModel(db, name);
      return reloadVersion(db, model, version);
    },

    async listVersions(name, opts = {}) {
      const model = await findModel(db, name);
      const first = pageSize(opts.first);
      let query = db
        .selectFrom('model_versions')
        .selectAll()
        .where('model_id', '=', model.id)
        .orderBy('version', 'desc')
        .limit(first + 1);
      if (opts.stage !== undefined) query = query.where('stage', '=', parseStage(opts.stage));
      if (opts.after)
        query = query.where('version', '<', Number(decodeCursor('version', opts.after)));
      const rows = await query.execute();
      const items = await toVersions(db, model.name, rows.slice(0, first));
      const hasNextPage = rows.length > first;
      const last = items.at(-1);
      return {
        items,
        hasNextPage,
        endCursor: last && hasNextPage ? encodeCursor('version', last.version) : null,
      };
    },

    async updateVersion(name, version, changes) {
      return db.transaction().execute(async (trx) => {
        const at = now();
        const model = await lockModel(trx, name, at);
        const row = await findVersion(trx, model, version);
        await trx
          .updateTable('model_versions')
          .set({ description: changes.description, updated_at: at })
          .where('id', '=', row.id)
          .execute();
        return reloadVersion(trx, model, version);
      });
    },

    async setVersionTag(name, version, key, value) {
      validateTagKey(key);
      await db.transaction().execute(async (trx) => {
        const model = await lockModel(trx, name, now());
        const row = await findVersion(trx, model, version);
        await trx
          .insertInto('model_version_tags')
          .values({ version_id: row.id, key, value: String(value) })
          .onConflict((oc) =>
            oc.columns(['version_id', 'key']).doUpdateSet({ value: String(value) }),
          )
          .execute();
      });
    },

    async deleteVersionTag(name, version, key) {
      return db.transaction().execute(async (trx) => {
        const model = await lockModel(trx, name, now());
        const row = await findVersion(trx, model, version);
        const result = await trx
          .deleteFrom('model_version_tags')
          .where('version_id', '=', row.id)
          .where('key', '=', key)
          .executeTakeFirst();
        return Number(result.numDeletedRows) > 0;
      });
    },

    async deleteModelVersion(name, version, opts = {}) {
      await db.transaction().execute(async (trx) => {
        const at = now();
        const model = await lockModel(trx, name, at);
        const row = await findVersion(trx, model, version);
        const aliases = (await aliasesOf(trx, model.id))
          .filter((a) => a.version === version)
          .map((a) => a.alias);
        if (aliases.includes(CHAMPION))
          throw new MenagerieError(
            'MODEL_VERSION_IN_USE',
            `version ${version} of '${name}' is the champion; promote another version before deleting it`,
          );
        if (!opts.force && (aliases.length > 0 || row.stage === 'Production'))
          throw new MenagerieError(
            'MODEL_VERSION_IN_USE',
            `version ${version} of '${name}' is ` +
              [
                row.stage === 'Production' ? 'in Production' : '',
                aliases.length ? `aliased ${aliases.join(', ')}` : '',
              ]
                .filter(Boolean)
                .join(' and ') +
              '; move those away first, or force the deletion (its aliases are removed)',
          );
        await trx.deleteFrom('model_versions').where('id', '=', row.id).execute();
        await record(trx, model.id, at, opts, [
          ...aliases.map((alias) => ({
            version,
            action: 'alias_delete' as const,
            alias,
            previousVersion: version,
          })),
          { version, action: 'delete', fromStage: row.stage },
        ]);
      });
    },

    async transitionStage(name, version, stageName, opts = {}) {
      const stage = parseStage(stageName);
      const archiveExisting = opts.archiveExisting === true;
      if (archiveExisting && !ACTIVE_STAGES.includes(stage))
        throw new MenagerieError(
          'MODEL_STAGE_INVALID',
          `archiveExisting only applies to Staging and Production, not ${stage}`,
        );
      return db.transaction().execute(async (trx) => {
        const at = now();
        const model = await lockModel(trx, name, at);
        const row = await findVersion(trx, model, version);
        if (ACTIVE_STAGES.includes(stage)) requireReady(name, row, `move to ${stage}`);
        const champion = (await aliasesOf(trx, model.id)).find((a) => a.alias === CHAMPION);
        if (champion?.version === version && stage !== 'Production')
          throw new MenagerieError(
            'MODEL_VERSION_IN_USE',
            `version ${version} of '${name}' is the champion and must stay in Production; ` +
              'promote another version first, or delete the champion alias',
          );
        const holders = archiveExisting
          ? (
              await trx
                .selectFrom('model_versions')
                .select(['version', 'stage'])
                .where('model_id', '=', model.id)
                .where('stage', '=', stage)
                .where('version', '!=', version)
                .orderBy('version')
                .execute()
            ).map((h) => h.version)
          : [];
        if (champion && holders.includes(champion.version))
          throw new MenagerieError(
            'MODEL_VERSION_IN_USE',
            `archiving the other ${stage} versions would archive the champion (version ` +
              `${champion.version}); use promoteChampion to replace it`,
          );
        const changes: TransitionRecord[] = [];
        if (row.stage !== stage) {
          await setStage(trx, model, version, stage, at);
          changes.push({ version, action: 'stage', fromStage: row.stage, toStage: stage });
        }
        for (const holder of holders) {
          await setStage(trx, model, holder, 'Archived', at);
          changes.push({ version: holder, action: 'stage', fromStage: stage, toStage: 'Archived' });
        }
        await record(trx, model.id, at, opts, changes);
        return reloadVersion(trx, model, version);
      });
    },

    async setAlias(name, alias, version, opts = {}) {
      validateAlias(alias);
      if (alias === CHAMPION)
        throw new MenagerieError(
          'MODEL_ALIAS_INVALID',
          `'${CHAMPION}' moves only with promoteChampion (menagerie models promote), which also moves the stage`,
        );
      return db.transaction().execute(async (trx) => {
        const at = now();
        const model = await lockModel(trx, name, at);
        const row = await findVersion(trx, model, version);
        requireReady(name, row, `alias '${alias}' to`);
        const previous = (await aliasesOf(trx, model.id)).find((a) => a.alias === alias);
        if (previous?.version !== version) {
          await trx
            .insertInto('model_aliases')
            .values({ model_id: model.id, alias, version, updated_at: at })
            .onConflict((oc) =>
              oc.columns(['model_id', 'alias']).doUpdateSet({ version, updated_at: at }),
            )
            .execute();
          await record(trx, model.id, at, opts, [
            {
              version,
              action: 'alias_set',
              alias,
              toStage: row.stage,
              previousVersion: previous?.version ?? null,
            },
          ]);
        }
        return reloadVersion(trx, model, version);
      });
    },

    async deleteAlias(name, alias, opts = {}) {
      await db.transaction().execute(async (trx) => {
        const at = now();
        const model = await lockModel(trx, name, at);
        const existing = (await aliasesOf(trx, model.id)).find((a) => a.alias === alias);
        if (!existing)
          throw new MenagerieError(
            'MODEL_ALIAS_NOT_FOUND',
            `model '${name}' has no alias '${alias}'`,
          );
        await trx
          .deleteFrom('model_aliases')
          .where('model_id', '=', model.id)
          .where('alias', '=', alias)
          .execute();
        await record(trx, model.id, at, opts, [
          {
            version: existing.version,
            action: 'alias_delete',
            alias,
            previousVersion: existing.version,
          },
        ]);
      });
    },

    async getVersionByAlias(name, alias) {
      const model = await findModel(db, name);
      const found = (await aliasesOf(db, model.id)).find((a) => a.alias === alias);
      if (!found)
        throw new MenagerieError(
          'MODEL_ALIAS_NOT_FOUND',
          `model '${name}' has no alias '${alias}'`,
        );
      return reloadVersion(db, model, found.version);
    },

    async promoteChampion(name, version, opts = {}) {
      return db.transaction().execute(async (trx) => {
        const at = now();
        const model = await lockModel(trx, name, at);
        const row = await findVersion(trx, model, version);
        requireReady(name, row, 'promote');
        const previous = (await aliasesOf(trx, model.id)).find((a) => a.alias === CHAMPION);
        const archived = (
          await trx
            .selectFrom('model_versions')
            .select('version')
            .where('model_id', '=', model.id)
            .where('stage', '=', 'Production')
            .where('version', '!=', version)
            .orderBy('version')
            .execute()
        ).map((r) => r.version);
        const changes: TransitionRecord[] = [];
        if (previous?.version !== version) {
          await trx
            .insertInto('model_aliases')
            .values({ model_id: model.id, alias: CHAMPION, version, updated_at: at })
            .onConflict((oc) =>
              oc.columns(['model_id', 'alias']).doUpdateSet({ version, updated_at: at }),
            )
            .execute();
          changes.push({
            version,
            action: 'alias_set',
            alias: CHAMPION,
            toStage: 'Production',
            previousVersion: previous?.version ?? null,
          });
        }
        if (row.stage !== 'Production') {
          await setStage(trx, model, version, 'Production', at);
          changes.push({ version, action: 'stage', fromStage: row.stage, toStage: 'Production' });
        }
        for (const old of archived) {
          await setStage(trx, model, old, 'Archived', at);
          changes.push({
            version: old,
            action: 'stage',
            fromStage: 'Production',
            toStage: 'Archived',
          });
        }
        await record(trx, model.id, at, opts, changes);
        return {
          version: await reloadVersion(trx, model, version),
          previousChampion: previous && previous.version !== version ? previous.version : null,
          archived,
        };
      });
    },

    async resolveModelUri(uri) {
      const target = parseModelUri(uri);
      switch (target.kind) {
        case 'version':
          return registry.getModelVersion(target.name, target.version);
        case 'alias':
          return registry.getVersionByAlias(target.name, target.alias);
        case 'stage':
        case 'latest': {
          const model = await findModel(db, target.name);
          let query = db
            .selectFrom('model_versions')
            .selectAll()
            .where('model_id', '=', model.id)
            .orderBy('version', 'desc')
            .limit(1);
          query =
            target.kind === 'stage'
              ? query.where('stage', '=', target.stage)
              : query.where('status', '=', 'READY');
          const row = await query.executeTakeFirst();
          if (!row)
            throw new MenagerieError(
              'MODEL_VERSION_NOT_FOUND',
              target.kind === 'stage'
                ? `model '${model.name}' has no version in ${target.stage}`
                : `model '${model.name}' has no READY version`,
            );
          return toVersion(db, model.name, row);
        }
      }
    },

    async getTransitions(name, version) {
      const model = await findModel(db, name);
      let query = db
        .selectFrom('stage_transitions')
        .selectAll()
        .where('model_id', '=', model.id)
        .orderBy('id');
      if (version !== undefined)
        query = query.where('version', '=', validateVersion(name, version));
      const rows = await query.execute();
      return rows.map((r) => ({
        id: r.id,
        changeId: r.change_id,
        name: model.name,
        version: r.version,
        action: r.action,
        fromStage: r.from_stage,
        toStage: r.to_stage,
        alias: r.alias,
        previousVersion: r.previous_version,
        user: r.user,
        at: r.at,
        comment: r.comment,
      }));
    },
  };
  return registry;
}
