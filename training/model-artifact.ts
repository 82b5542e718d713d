import { randomBytes } from 'node:crypto';
import fs from 'node:fs/promises';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import type * as TfNode from '@tensorflow/tfjs-node';
import { MenagerieError } from '../core/errors.js';
import { loadTensorflow, tensorflowVersion } from '../tf/tensorflow.js';
import { IMAGE_DECODERS, type InputSpec } from '../data/input-spec.js';
import type { HpValue, ModelArtifactManifest, ModelBackbone } from '../plugin-api/plugin.js';

/** The file beside `model.json` that says how to load the model back and feed it. */
export const MANIFEST_FILE = 'menagerie.json';
export const MODEL_FILE = 'model.json';

export type ManifestInput = Omit<
  ModelArtifactManifest,
  'format' | 'tfjsVersion' | 'tensorflowVersion' | 'createdAt'
>;

/**
 * Writes `model` in tfjs format (`model.json` + `weights.bin`) with its `menagerie.json`
 * and any `extraFiles` into `dir`, replacing what was there. The files are written to a
 * sibling folder first and swapped in by rename, so a reader (or a kill) never sees half
 * an artifact.
 *
 * ```ts
 * await saveModelArtifact('runs/7/model', model, {
 *   plugin: 'menagerie:cnn', pluginVersion: '1.0.0', labels: ['cat', 'dog'], inputSpec,
 *   hyperparameters: hp.values, embeddingLayer: 'embedding', epoch: 4, metrics: { val_accuracy: 0.97 },
 * });
 * ```
 */
export async function saveModelArtifact(
  dir: string,
  model: TfNode.LayersModel,
  manifest: ManifestInput,
  extraFiles: Record<string, Buffer> = {},
): Promise<ModelArtifactManifest> {
  const tf = await loadTensorflow();
  const target = path.resolve(dir);
  const staging = `${target}.tmp-${process.pid}-${randomBytes(4).toString('hex')}`;
  const full: ModelArtifactManifest = {
    format: 1,
    ...manifest,
    tfjsVersion: tf.version.tfjs,
    tensorflowVersion: await tensorflowVersion(),
    createdAt: new Date().toISOString(),
  };
  await fs.mkdir(staging, { recursive: true });
  try {
    await model.save(pathToFileURL(staging).href);
    await fs.writeFile(path.join(staging, MANIFEST_FILE), `${JSON.stringify(full, null, 2)}\n`);
    for (const [name, bytes] of Object.entries(extraFiles)) {
      await fs.writeFile(path.join(staging, path.basename(name)), bytes);
    }
    const old = `${target}.old-${process.pid}-${randomBytes(4).toString('hex')}`;
    const hadOld = await fs.rename(target, old).then(
      () => true,
      () => false,
    );
    await fs.rename(staging, target);
    if (hadOld) await fs.rm(old, { recursive: true, force: true });
  } catch (error) {
    await fs.rm(staging, { recursive: true, force: true });
    throw error;
  }
  return full;
}

/**
 * Reads and checks `<dir>/menagerie.json`; a missing or malformed manifest is a
 * MODEL_ARTIFACT_INVALID error naming the file and what is wrong.
 */
export async function readModelArtifactManifest(dir: string): Promise<ModelArtifactManifest> {
  const file = path.join(dir, MANIFEST_FILE);
  let raw: unknown;
  try {
    raw = JSON.parse(await fs.readFile(file, 'utf8'));
  } catch (error) {
    const why = error instanceof SyntaxError ? 'is not valid JSON' : 'cannot be read';
    throw invalid(`${file} ${why}`, error);
  }
  const m = (typeof raw === 'object' && raw !== null ? raw : {}) as Record<string, unknown>;
  const problem =
    typeof m.plugin !== 'string' || m.plugin === ''
      ? 'plugin should be a plugin name'
      : !Array.isArray(m.labels) ||
          m.labels.length === 0 ||
          m.labels.some((l) => typeof l !== 'string')
        ? 'labels should be a non-empty list of class names'
        : !isInputSpec(m.inputSpec)
          ? `inputSpec should have size, channels, fit, scale and offset, and a decoder if any of ${IMAGE_DECODERS.join(', ')}`
          : typeof m.embeddingLayer !== 'string'
            ? 'embeddingLayer should be a layer name'
            : m.backbone !== undefined && !isModelBackbone(m.backbone)
              ? 'backbone should have a name, source, weightsSha256, featureSize and included'
              : null;
  if (problem) throw invalid(`${file}: ${problem}`);
  return {
    format: 1,
    plugin: m.plugin as string,
    pluginVersion: typeof m.pluginVersion === 'string' ? m.pluginVersion : null,
    labels: m.labels as string[],
    inputSpec: m.inputSpec as InputSpec,
    hyperparameters: isRecord(m.hyperparameters)
      ? (m.hyperparameters as Record<string, HpValue>)
      : {},
    embeddingLayer: m.embeddingLayer as string,
    epoch: typeof m.epoch === 'number' ? m.epoch : null,
    tfjsVersion: String(m.tfjsVersion ?? ''),
    tensorflowVersion: String(m.tensorflowVersion ?? ''),
    createdAt: String(m.createdAt ?? ''),
    metrics: Object.fromEntries(
      Object.entries(isRecord(m.metrics) ? m.metrics : {}).filter(
        (e): e is [string, number] => typeof e[1] === 'number',
      ),
    ),
    ...(m.backbone !== undefined && { backbone: m.backbone as ModelBackbone }),
  };
}

/**
 * Loads a saved model and its manifest, checking they agree (one output per label, the
 * embedding layer exists). The caller owns the model and disposes it.
 *
 * ```ts
 * const { model, manifest } = await loadModelArtifact('runs/7/model');
 * const probs = model.predict(xs); // classes in manifest.labels order
 * ```
 */
export async function loadModelArtifact(
  dir: string,
): Promise<{ model: TfNode.LayersModel; manifest: ModelArtifactManifest }> {
  const tf = await loadTensorflow();
  const manifest = await readModelArtifactManifest(dir);
  const file = path.join(path.resolve(dir), MODEL_FILE);
  await checkWeightFiles(file);
  let model: TfNode.LayersModel;
  try {
    model = await tf.loadLayersModel(pathToFileURL(file).href);
  } catch (error) {
    const reason = String(error instanceof Error ? error.message : error).split('\n')[0];
    throw invalid(`${file} does not load as a tfjs model: ${reason}`, error);
  }
  const units = model.outputs[0]?.shape.at(-1);
  const problem =
    units !== manifest.labels.length
      ? `the model has ${String(units)} outputs, the manifest ${manifest.labels.length} labels`
      : !model.layers.some((l) => l.name === manifest.embeddingLayer)
        ? `the model has no layer '${manifest.embeddingLayer}' (the manifest's embeddingLayer)`
        : null;
  if (problem) {
    model.dispose();
    throw invalid(`${dir}: ${problem}`);
  }
  return { model, manifest };
}

const DTYPE_BYTES: Record<string, number> = {
  float32: 4,
  int32: 4,
  bool: 1,
  uint8: 1,
  uint16: 2,
  float16: 2,
};

/**
 * Checks the weight files hold the bytes `model.json` declares before tfjs reads them:
 * a failed load inside tfjs leaves the half-built model's variables allocated.
 */
async function checkWeightFiles(file: string): Promise<void> {
  let json: { weightsManifest?: unknown };
  try {
    json = JSON.parse(await fs.readFile(file, 'utf8')) as { weightsManifest?: unknown };
  } catch (error) {
    const why = error instanceof SyntaxError ? 'is not valid JSON' : 'cannot be read';
    throw invalid(`${file} does not load as a tfjs model: it ${why}`, error);
  }
  if (!Array.isArray(json.weightsManifest)) {
    throw invalid(`${file} does not load as a tfjs model: no weightsManifest`);
  }
  for (const group of json.weightsManifest as { paths?: string[]; weights?: unknown[] }[]) {
    let expected = 0;
    for (const w of (group.weights ?? []) as {
      shape?: number[];
      dtype?: string;
      quantization?: { dtype?: string };
    }[]) {
      const dtype = w.quantization?.dtype ?? w.dtype ?? 'float32';
      expected += (w.shape ?? []).reduce((a, b) => a * b, 1) * (DTYPE_BYTES[dtype] ?? 4);
    }
    let actual = 0;
    for (const name of group.paths ?? []) {
      const weights = path.join(path.dirname(file), name);
      actual += await fs.stat(weights).then(
        (s) => s.size,
        () => {
          throw invalid(`${file} does not load as a tfjs model: ${weights} is missing`);
        },
      );
    }
    if (actual !== expected) {
      throw invalid(
        `${file} does not load as a tfjs model: its weight files hold ${actual} bytes, it declares ${expected}`,
      );
    }
  }
}

function isModelBackbone(value: unknown): value is ModelBackbone {
  if (!isRecord(value)) return false;
  const source = value['source'];
  return (
    typeof value['name'] === 'string' &&
    typeof value['weightsSha256'] === 'string' &&
    /^[0-9a-f]{64}$/.test(value['weightsSha256']) &&
    Number.isInteger(value['featureSize']) &&
    typeof value['included'] === 'boolean' &&
    isRecord(source) &&
    ['package', 'url', 'path'].includes(String(source['kind'])) &&
    typeof source['location'] === 'string'
  );
}

function isInputSpec(value: unknown): value is InputSpec {
  if (!isRecord(value)) return false;
  return (
    typeof value.size === 'number' &&
    value.channels === 3 &&
    (value.fit === 'fill' || value.fit === 'cover') &&
    typeof value.scale === 'number' &&
    typeof value.offset === 'number' &&
    (value.decoder === undefined || IMAGE_DECODERS.some((d) => d === value.decoder))
  );
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function invalid(message: string, cause?: unknown): MenagerieError {
  return new MenagerieError('MODEL_ARTIFACT_INVALID', message, { cause });
}
