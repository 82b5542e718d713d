import { MenagerieError } from '../core/errors.js';
import { modelAliases, type ModelAliasOperations } from './model-aliases.js';
import { parseModelUri } from './model-uri.js';
import { modelVersions, type ModelVersionOperations } from './model-versions.js';
import { registeredModels, type RegisteredModelOperations } from './registered-models.js';
import { createRegistryStore } from './registry-store.js';
import type { ModelRegistryOptions, ModelVersion } from './registry-types.js';
import { stageTransitions, type StageTransitionOperations } from './stage-transitions.js';

export type {
  ChangeOptions,
  ModelRegistryOptions,
  ModelVersion,
  NewModelVersion,
  Page,
  PromotionResult,
  RegisteredModel,
  StageTransition,
} from './registry-types.js';

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
export interface ModelRegistry
  extends
    RegisteredModelOperations,
    ModelVersionOperations,
    StageTransitionOperations,
    ModelAliasOperations {
  /**
   * The version a `models:/` URI names: `/3`, `@alias`, `/<stage>` (its highest version)
   * or `/latest` (the highest READY version).
   */
  resolveModelUri(uri: string): Promise<ModelVersion>;
}

export function createModelRegistry(options: ModelRegistryOptions): ModelRegistry {
  const store = createRegistryStore(options);
  const { db, findModel, toVersion } = store;
  const registry: ModelRegistry = {
    ...registeredModels(store),
    ...modelVersions(store),
    ...stageTransitions(store),
    ...modelAliases(store),

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
  };
  return registry;
}
