import { excerpt, MenagerieError } from '../core/errors.js';
import { CHAMPION, validateAlias } from './model-names.js';
import type { RegistryStore } from './registry-store.js';
import type { ChangeOptions, ModelVersion } from './registry-types.js';

/**
 * Named pointers to versions, unique per model, as in MLflow; `champion` is the one serving
 * follows, and it moves only with `promoteChampion` (stage-transitions.ts).
 */
export interface ModelAliasOperations {
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
}

export function modelAliases(store: RegistryStore): ModelAliasOperations {
  const {
    db,
    now,
    findModel,
    lockModel,
    findVersion,
    aliasesOf,
    requireReady,
    record,
    reloadVersion,
  } = store;
  return {
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
            `model '${excerpt(name)}' has no alias '${excerpt(alias)}'`,
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
          `model '${excerpt(name)}' has no alias '${excerpt(alias)}'`,
        );
      return reloadVersion(db, model, found.version);
    },
  };
}
