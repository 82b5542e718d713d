import { MenagerieError } from '../core/errors.js';
import type { ModelStage } from '../data/tables.js';
import { ACTIVE_STAGES, CHAMPION, parseStage, validateVersion } from './model-names.js';
import type { ModelRow, RegistryStore, TransitionRecord, Trx } from './registry-store.js';
import type {
  ChangeOptions,
  ModelVersion,
  PromotionResult,
  StageTransition,
} from './registry-types.js';

/** Moving versions between stages, promoting the champion, and reading the audit trail. */
export interface StageTransitionOperations {
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
  /**
   * In one transaction: `champion` moves to the version, the version becomes Production
   * and every other Production version becomes Archived. Repeating it changes nothing.
   */
  promoteChampion(name: string, version: number, options?: ChangeOptions): Promise<PromotionResult>;
  /** The audit trail, oldest first, of the model or one of its versions. */
  getTransitions(name: string, version?: number): Promise<StageTransition[]>;
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

export function stageTransitions(store: RegistryStore): StageTransitionOperations {
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
}
