// The served side of the predict benchmarks: the reference CNN registered as a champion and
// served as the GraphQL predict resolver serves it.
import path from 'node:path';
import { cnnModel, CNN_EMBEDDING_LAYER } from '../plugins/models/cnn.js';
import { HyperParameters } from '../plugin-api/hyperparameters.js';
import { createModelRegistry, type ModelRegistry } from '../registry/model-registry.js';
import { registerModelArtifact } from '../registry/register-model.js';
import { createInferenceEngine, type InferenceEngine } from '../serving/inference-engine.js';
import { followChampion } from '../serving/registry-champion.js';
import { saveModelArtifact } from '../training/model-artifact.js';
import { loadTensorflow } from '../tf/tensorflow.js';
import type { Workspace } from '../cli/workspace.js';
import { referenceCnn } from './reference-cnn.js';

export const REFERENCE_LABELS = ['cat', 'dog', 'wild'];
export const REFERENCE_MODEL_NAME = 'faces';

/**
 * Saves the reference CNN (the `menagerie:cnn` plugin's defaults, random weights, seed 0)
 * as a model artifact in the workspace, registers it and promotes it to champion of
 * `faces`, as `menagerie models register` and `promote` would.
 *
 * ```ts
 * const { registry, version } = await registerReferenceChampion(workspace);
 * ```
 */
export async function registerReferenceChampion(
  workspace: Workspace,
): Promise<{ registry: ModelRegistry; version: number }> {
  const tf = await loadTensorflow();
  const { model, input } = await referenceCnn(tf, REFERENCE_LABELS);
  const hp = new HyperParameters();
  cnnModel().space(hp);
  const artifact = path.join(workspace.dataDir, 'reference-cnn');
  try {
    await saveModelArtifact(artifact, model, {
      plugin: 'menagerie:cnn',
      pluginVersion: null,
      labels: REFERENCE_LABELS,
      inputSpec: input,
      hyperparameters: hp.values,
      embeddingLayer: CNN_EMBEDDING_LAYER,
      epoch: null,
      metrics: {},
    });
  } finally {
    model.dispose();
  }
  const registry = createModelRegistry({ db: workspace.database.db, user: 'bench' });
  const version = await registerModelArtifact(registry, workspace.plugins, {
    name: REFERENCE_MODEL_NAME,
    dir: artifact,
  });
  await registry.promoteChampion(REFERENCE_MODEL_NAME, version.version, { comment: 'bench' });
  return { registry, version: version.version };
}

/**
 * The inference engine the server builds (serving/model-serving.ts): following the
 * champion through the registry, loaded through its model plugin, with serving's defaults
 * (micro-batches of up to 32, 2 ms wait).
 */
export async function servedReferenceEngine(workspace: Workspace): Promise<InferenceEngine> {
  const { registry } = await registerReferenceChampion(workspace);
  const engine = await createInferenceEngine({
    ...followChampion(registry, workspace, REFERENCE_MODEL_NAME),
  });
  if (engine.status().serving === null) {
    throw new Error(`the engine serves nothing: ${engine.status().lastError?.message ?? '?'}`);
  }
  return engine;
}
