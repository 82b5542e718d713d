import fs from 'node:fs/promises';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { MenagerieError } from '../data/errors.js';
import type { InputSpec } from '../data/input-spec.js';
import type { ModelRegistry, ModelVersion } from './model-registry.js';

/** The file beside a saved model that says how to load it back and feed it. */
export const MANIFEST_FILE = 'menagerie.json';

/** What the registry needs from a model artifact's `menagerie.json`. */
export interface ModelArtifactManifest {
  plugin: string;
  pluginVersion: string | null;
  labels: string[];
  inputSpec: InputSpec;
  metrics: Record<string, number>;
  runId: string | null;
}

/**
 * Reads `<dir>/menagerie.json`. Accepts `plugin` as a name or `{ name, version }` and the
 * spec as `inputSpec` or `input`, so manifests written before and after the trainer
 * settles its shape both load.
 */
export async function readModelManifest(dir: string): Promise<ModelArtifactManifest> {
  const file = path.join(dir, MANIFEST_FILE);
  const invalid = (why: string, cause?: unknown) =>
    new MenagerieError('MODEL_ARTIFACT_INVALID', `${file}: ${why}`, { cause });
  let raw: unknown;
  try {
    raw = JSON.parse(await fs.readFile(file, 'utf8'));
  } catch (error) {
    throw invalid(error instanceof SyntaxError ? 'not JSON' : 'cannot be read', error);
  }
  if (typeof raw !== 'object' || raw === null) throw invalid('not a JSON object');
  const m = raw as Record<string, unknown>;
  const plugin = m.plugin as unknown;
  const pluginName =
    typeof plugin === 'string'
      ? plugin
      : typeof plugin === 'object' && plugin !== null
        ? (plugin as { name?: unknown }).name
        : undefined;
  if (typeof pluginName !== 'string' || pluginName === '') throw invalid('no plugin name');
  const pluginVersion =
    typeof m.pluginVersion === 'string'
      ? m.pluginVersion
      : typeof plugin === 'object' && plugin !== null
        ? (plugin as { version?: unknown }).version
        : undefined;
  const labels = m.labels;
  if (!Array.isArray(labels) || labels.length === 0 || labels.some((l) => typeof l !== 'string'))
    throw invalid('labels should be a non-empty list of class names');
  const inputSpec = (m.inputSpec ?? m.input) as InputSpec | undefined;
  if (typeof inputSpec !== 'object' || inputSpec === null || typeof inputSpec.size !== 'number')
    throw invalid('no input spec (inputSpec.size, channels, fit, scale, offset)');
  const metrics: Record<string, number> = {};
  if (typeof m.metrics === 'object' && m.metrics !== null)
    for (const [key, value] of Object.entries(m.metrics))
      if (typeof value === 'number') metrics[key] = value;
  return {
    plugin: pluginName,
    pluginVersion: typeof pluginVersion === 'string' ? pluginVersion : null,
    labels: labels as string[],
    inputSpec,
    metrics,
    runId: typeof m.runId === 'string' ? m.runId : null,
  };
}

/**
 * Registers the model saved in `dir` as a new version of `name`: the manifest is read
 * first (a bad one leaves the registry unchanged), the version starts PENDING and turns
 * READY once the weights file is found, FAILED (with the reason) if not.
 *
 * ```ts
 * const v = await registerModelArtifact(registry, { name: 'faces', dir: 'runs/abc/model' });
 * ```
 */
export async function registerModelArtifact(
  registry: ModelRegistry,
  options: {
    name: string;
    dir: string;
    runId?: string | null;
    description?: string | null;
    user?: string;
  },
): Promise<ModelVersion> {
  const dir = path.resolve(options.dir);
  const manifest = await readModelManifest(dir);
  const created = await registry.createModelVersion({
    name: options.name,
    source: pathToFileURL(dir).href,
    runId: options.runId ?? manifest.runId,
    plugin: manifest.plugin,
    pluginVersion: manifest.pluginVersion,
    inputSpec: manifest.inputSpec,
    labels: manifest.labels,
    metrics: manifest.metrics,
    description: options.description ?? null,
    ...(options.user !== undefined && { createdBy: options.user }),
  });
  const weights = path.join(dir, 'model.json');
  const found = await fs.stat(weights).then(
    (s) => s.isFile(),
    () => false,
  );
  return found
    ? registry.setVersionStatus(options.name, created.version, 'READY')
    : registry.setVersionStatus(options.name, created.version, 'FAILED', `${weights} is missing`);
}
