import type {
  BackbonePlugin,
  BackboneUse,
  LoadedBackbone,
  ModelBackbone,
} from '../plugin-api/plugin.js';
import type { PluginRegistry } from '../plugin-api/plugin-registry.js';
import { MenagerieError } from '../core/errors.js';
import { loadTensorflow } from '../tf/tensorflow.js';

/** A loaded backbone with the plugin that loaded it. */
export interface Backbone {
  plugin: BackbonePlugin;
  loaded: LoadedBackbone;
  /** What a model version records of it (see ModelArtifactManifest.backbone). */
  record(included: boolean): ModelBackbone;
}

/**
 * Loads backbones once per process and keeps them: a training run, the inference engine
 * and the similar-images index all ask for the same weights, which take a second or two to
 * load and tens of megabytes to hold.
 *
 * ```ts
 * const backbones = createBackboneLoader({ plugins, cacheDir: '.menagerie/cache' });
 * const { loaded } = await backbones.load('mobilenet_v2_140');
 * const features = loaded.features(xs);
 * backbones.close();
 * ```
 */
export interface BackboneLoader {
  /** A registered backbone by name (`mobilenet_v2_140` or `menagerie:mobilenet_v2_140`), or the plugin given. */
  load(backbone: BackboneUse['backbone'], signal?: AbortSignal): Promise<Backbone>;
  /** Frees every backbone loaded; later loads load again. */
  close(): void;
}

export function createBackboneLoader(options: {
  plugins: PluginRegistry;
  /** Where backbones keep derived files (a converted graph). */
  cacheDir: string;
}): BackboneLoader {
  const loading = new Map<string, Promise<Backbone>>();
  return {
    load(backbone, signal) {
      const plugin =
        typeof backbone === 'string' ? options.plugins.get('backbone', backbone) : backbone;
      // Name, source and preprocessing: the same weights fed differently are another backbone.
      const key = JSON.stringify([plugin.name, plugin.source, plugin.inputSpec]);
      let pending = loading.get(key);
      if (!pending) {
        pending = loadBackbone(plugin, options.cacheDir, signal);
        loading.set(key, pending);
        pending.catch(() => loading.delete(key));
      }
      return pending;
    },
    close() {
      const all = [...loading.values()];
      loading.clear();
      for (const pending of all)
        pending.then(
          (b) => b.loaded.dispose(),
          () => {},
        );
    },
  };
}

async function loadBackbone(
  plugin: BackbonePlugin,
  cacheDir: string,
  signal: AbortSignal | undefined,
): Promise<Backbone> {
  const tf = await loadTensorflow();
  let loaded: LoadedBackbone;
  try {
    loaded = await plugin.load({ tf, cacheDir, ...(signal && { signal }) });
  } catch (error) {
    if (error instanceof MenagerieError) throw error;
    throw new MenagerieError(
      'MODEL_BASE_UNAVAILABLE',
      `backbone ${plugin.name} did not load: ${(error as Error).message ?? String(error)}`,
      { cause: error },
    );
  }
  if (plugin.featureSize !== undefined && plugin.featureSize !== loaded.featureSize) {
    loaded.dispose();
    throw new MenagerieError(
      'PLUGIN_INVALID',
      `backbone ${plugin.name} declares ${plugin.featureSize} features, its model gives ${loaded.featureSize}`,
    );
  }
  if (plugin.trainable && !loaded.trainable) {
    loaded.dispose();
    throw new MenagerieError(
      'PLUGIN_INVALID',
      `backbone ${plugin.name} says it is trainable but its load gave no layers model`,
    );
  }
  return {
    plugin,
    loaded,
    record: (included) => ({
      name: plugin.name,
      source: loaded.source,
      weightsSha256: loaded.weightsSha256,
      featureSize: loaded.featureSize,
      included,
    }),
  };
}
