import type * as TfNode from '@tensorflow/tfjs-node';
import { localArtifactFolder, type ArtifactStore } from '../data/artifact-store.js';
import { MenagerieError } from '../core/errors.js';
import { loadTensorflow } from '../tf/tensorflow.js';
import type { ModelArtifactManifest, ModelPlugin } from '../plugin-api/plugin.js';
import type { PluginRegistry } from '../plugin-api/plugin-registry.js';
import { loadModelArtifact, readModelArtifactManifest } from './model-artifact.js';

export interface LoadedModel {
  model: TfNode.LayersModel;
  manifest: ModelArtifactManifest;
  plugin: ModelPlugin;
}

/**
 * Loads a saved model through the plugin that built it (its `load` hook when it has one,
 * else the tfjs artifact loader) and checks it answers one input of its spec's shape (or of
 * its backbone's features, for a transfer model's head), so a model that cannot serve is
 * found out here, not at the first request. `location` is a folder, a `file://` URI or a
 * remote artifact URI (`s3://…`, fetched through `artifacts`' read-through cache).
 *
 * ```ts
 * const { model, manifest } = await loadModelThroughPlugin(workspace.plugins, version.source, workspace.artifacts);
 * ```
 */
export async function loadModelThroughPlugin(
  plugins: PluginRegistry,
  location: string,
  artifacts?: ArtifactStore,
): Promise<LoadedModel> {
  const dir = await localArtifactFolder(location, artifacts);
  const manifest = await readModelArtifactManifest(dir);
  const plugin = plugins.get('model', manifest.plugin);
  const tf = await loadTensorflow();
  let model: TfNode.LayersModel;
  try {
    model = plugin.load
      ? await plugin.load(dir, { tf, manifest })
      : (await loadModelArtifact(dir)).model;
  } catch (error) {
    if (error instanceof MenagerieError) throw error;
    throw new MenagerieError(
      'MODEL_ARTIFACT_INVALID',
      `model plugin '${plugin.name}' failed to load ${dir}: ${error instanceof Error ? error.message : String(error)}`,
      { cause: error },
    );
  }
  try {
    const { size } = manifest.inputSpec;
    // A transfer model's head is fed its backbone's features, not pixels.
    const head = manifest.backbone && !manifest.backbone.included;
    const shape = head ? [1, manifest.backbone!.featureSize] : [1, size, size, 3];
    const out = tf.tidy(() => {
      const y = model.predict(tf.zeros(shape)) as TfNode.Tensor;
      return y.shape.at(-1);
    });
    if (out !== manifest.labels.length) {
      throw new Error(
        `it outputs ${String(out)} classes, the manifest lists ${manifest.labels.length}`,
      );
    }
  } catch (error) {
    model.dispose();
    throw new MenagerieError(
      'MODEL_ARTIFACT_INVALID',
      `${dir} loads but does not predict: ${error instanceof Error ? error.message : String(error)}`,
      { cause: error },
    );
  }
  return { model, manifest, plugin };
}
