import { MenagerieError } from '../core/errors.js';
import type { ModelVersionStatus } from '../data/tables.js';
import { ACTIVE_STAGES, CHAMPION, parseStage, validateModelName } from './model-names.js';
import {
  decodeCursor,
  encodeCursor,
  pageSize,
  validateTagKey,
  type RegistryStore,
} from './registry-store.js';
import type { ChangeOptions, ModelVersion, NewModelVersion, Page } from './registry-types.js';

/** A registered model's numbered versions: what was saved, where, by whom, and its status. */
export interface ModelVersionOperations {
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
}

export function modelVersions(store: RegistryStore): ModelVersionOperations {
  const {
    db,
    now,
    user: registryUser,
    findModel,
    lockModel,
    findVersion,
    aliasesOf,
    record,
    toVersions,
    toVersion,
    reloadVersion,
  } = store;
  return {
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
  };
}
