import { isMenagerieError } from '../core/errors.js';
import type { ModelRegistry } from '../registry/model-registry.js';
import { CHAMPION } from '../registry/model-names.js';
import type { InferenceEngineOptions } from './inference-engine.js';
import { loadServedModel, type ModelLoaders } from './served-model.js';

/**
 * The registry side of an inference engine: serve `modelName`'s champion, loaded from its
 * version's artifact through its model plugin, with the input spec and labels the registry
 * recorded.
 *
 * ```ts
 * const engine = await createInferenceEngine({ ...followChampion(registry, workspace, 'faces') });
 * ```
 */
export function followChampion(
  registry: Pick<ModelRegistry, 'getVersionByAlias' | 'getModelVersion'>,
  loaders: ModelLoaders,
  modelName: string,
): Pick<InferenceEngineOptions, 'resolveChampion' | 'loadVersion'> {
  return {
    async resolveChampion() {
      try {
        const v = await registry.getVersionByAlias(modelName, CHAMPION);
        return { name: v.name, version: v.version };
      } catch (error) {
        if (
          isMenagerieError(error, 'MODEL_ALIAS_NOT_FOUND') ||
          isMenagerieError(error, 'MODEL_NOT_FOUND')
        )
          return null;
        throw error;
      }
    },
    async loadVersion(ref) {
      return loadServedModel(await registry.getModelVersion(ref.name, ref.version), loaders);
    },
  };
}
