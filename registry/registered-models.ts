import { MenagerieError } from '../core/errors.js';
import { dialectOf, like } from '../data/sql-dialect.js';
import { isUniqueViolation } from '../data/sql-errors.js';
import { CHAMPION, validateModelName } from './model-names.js';
import {
  decodeCursor,
  encodeCursor,
  pageSize,
  validateTagKey,
  type Db,
  type RegistryStore,
  type Trx,
} from './registry-store.js';
import type { Page, RegisteredModel } from './registry-types.js';

/** The registry's registered models: a name, a description and tags over numbered versions. */
export interface RegisteredModelOperations {
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
      tags: Object.fromEntries(tags.filter((t) => t.model_id === id).map((t) => [t.key, t.value])),
      aliases: Object.fromEntries(
        aliases.filter((a) => a.model_id === id).map((a) => [a.alias, a.version]),
      ),
      latestVersion: latest.find((l) => l.model_id === id)?.latest ?? null,
      createdAt: r.created_at,
      updatedAt: r.updated_at,
    };
  });
}

export function registeredModels(store: RegistryStore): RegisteredModelOperations {
  const { db, now, findModel, lockModel, aliasesOf } = store;
  return {
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
      const { nameLike } = opts;
      if (nameLike)
        query = query.where((eb) =>
          like(dialectOf(db), eb.ref('name'), nameLike, { caseSensitive: false }),
        );
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
          // A concurrent creator can take the name after the check (PostgreSQL locks rows,
          // not the table): its unique violation is the same MODEL_EXISTS.
          await trx
            .updateTable('registered_models')
            .set({ name: newName })
            .where('id', '=', model.id)
            .execute()
            .catch((error: unknown) => {
              if (isUniqueViolation(error))
                throw new MenagerieError(
                  'MODEL_EXISTS',
                  `a registered model named '${newName}' exists`,
                );
              throw error;
            });
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
  };
}
