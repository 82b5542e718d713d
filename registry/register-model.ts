import { randomUUID } from 'node:crypto';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { MenagerieError } from '../core/errors.js';
import { localArtifactFolder, type ArtifactStore } from '../data/artifact-store.js';
import { uriScheme } from '../data/blob-store.js';
import type { ModelArtifactManifest, ModelBackbone } from '../plugin-api/plugin.js';
import type { PluginRegistry } from '../plugin-api/plugin-registry.js';
import { loadModelThroughPlugin } from '../training/load-model.js';
import type { ModelRegistry, ModelVersion } from './model-registry.js';
import { MODEL_ARTIFACT_PATH } from '../tracking/run-evaluation.js';
import type { TrackingStore } from '../tracking/tracking-store.js';

export interface RegisterModelOptions {
  /** Registered model name; created on first use, as MLflow's register_model does. */
  name: string;
  /** The model artifact folder (model.json, weights, menagerie.json): a path or an artifact URI. */
  dir: string;
  runId?: string | null;
  description?: string | null;
  user?: string;
  /**
   * The workspace's artifact store. When it is remote (S3), a local folder is first copied
   * into it (`models/<uuid>`), so that every replica can load the version.
   */
  artifacts?: ArtifactStore;
}

/**
 * Registers the model saved in `dir` as a new READY version of `name`. The model is first
 * loaded through the plugin that built it and run once; a missing plugin, a plugin that
 * throws, or a model that does not predict is an error and the registry is left unchanged.
 *
 * ```ts
 * const v = await registerModelArtifact(registry, plugins, { name: 'faces', dir: 'artifacts/1/abc/artifacts/model' });
 * ```
 */
export async function registerModelArtifact(
  registry: ModelRegistry,
  plugins: PluginRegistry,
  options: RegisterModelOptions,
): Promise<ModelVersion> {
  const { artifacts } = options;
  const dir = await localArtifactFolder(options.dir, artifacts);
  const { model, manifest, plugin } = await loadModelThroughPlugin(plugins, dir);
  model.dispose();
  let source = options.dir;
  if (['', 'file'].includes(uriScheme(options.dir))) {
    source = pathToFileURL(dir).href;
    if (artifacts && !artifacts.folderUri('models').startsWith('file:')) {
      source = artifacts.folderUri(`models/${randomUUID()}`);
      await artifacts.uploadFolder(dir, source);
    }
  }
  return createReadyVersion(registry, options, source, manifest, plugin.version);
}

async function createReadyVersion(
  registry: ModelRegistry,
  options: Omit<RegisterModelOptions, 'dir'>,
  source: string,
  manifest: ModelArtifactManifest,
  pluginVersion: string | undefined,
): Promise<ModelVersion> {
  const created = await registry.createModelVersion({
    name: options.name,
    source,
    runId: options.runId ?? null,
    plugin: manifest.plugin,
    pluginVersion: manifest.pluginVersion ?? pluginVersion ?? null,
    inputSpec: manifest.inputSpec,
    labels: manifest.labels,
    metrics: manifest.metrics,
    description: options.description ?? null,
    ...(manifest.backbone && { tags: backboneTags(manifest.backbone) }),
    ...(options.user !== undefined && { createdBy: options.user }),
  });
  return registry.setVersionStatus(options.name, created.version, 'READY');
}

/** Version tags naming a transfer model's backbone: the weights it must be served with. */
export const BACKBONE_TAGS = {
  name: 'menagerie.backbone',
  source: 'menagerie.backbone.source',
  sha256: 'menagerie.backbone.sha256',
  fineTuned: 'menagerie.backbone.fine_tuned',
} as const;

function backboneTags(backbone: ModelBackbone): Record<string, string> {
  const { source } = backbone;
  return {
    [BACKBONE_TAGS.name]: backbone.name,
    [BACKBONE_TAGS.source]:
      source.kind === 'package'
        ? `npm:${source.package}@${source.packageVersion ?? '?'}/${source.location}`
        : source.location,
    [BACKBONE_TAGS.sha256]: backbone.weightsSha256,
    [BACKBONE_TAGS.fineTuned]: String(backbone.included),
  };
}

/**
 * Registers the best model of a finished (or stopped, with a checkpoint) training run. The
 * version's source is the model folder inside the run's artifact URI (`file://` or `s3://`).
 *
 * ```ts
 * const v = await registerRunModel(registry, tracking, plugins, { name: 'faces', runId });
 * ```
 */
export async function registerRunModel(
  registry: ModelRegistry,
  tracking: TrackingStore,
  plugins: PluginRegistry,
  options: Omit<RegisterModelOptions, 'dir' | 'runId' | 'artifacts'> & { runId: string },
): Promise<ModelVersion> {
  const run = await tracking.getRun(options.runId);
  if (run.status === 'RUNNING' || run.status === 'FAILED') {
    throw new MenagerieError(
      'RUN_NOT_ACTIVE',
      `run ${run.id} is ${run.status}: only a finished run (or a stopped one with a checkpoint) can be registered`,
    );
  }
  if (run.tags['menagerie.model_artifact'] === undefined) {
    throw new MenagerieError(
      'MODEL_ARTIFACT_INVALID',
      `run ${run.id} saved no model (a tuning run? register its best trial, ${run.tags['menagerie.best_run'] ?? 'none'})`,
    );
  }
  // Through the tracking store: on a remote store this fetches the run's files first.
  const dir = path.join(await tracking.artifactPath(run.id), MODEL_ARTIFACT_PATH);
  const { model, manifest, plugin } = await loadModelThroughPlugin(plugins, dir);
  model.dispose();
  const source = run.artifactUri.startsWith('file:')
    ? pathToFileURL(dir).href
    : `${run.artifactUri}/${MODEL_ARTIFACT_PATH}`;
  return createReadyVersion(
    registry,
    { ...options, runId: run.id },
    source,
    manifest,
    plugin.version,
  );
}
