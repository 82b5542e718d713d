import type * as TfNode from '@tensorflow/tfjs-node';
import { MenagerieError } from '../core/errors.js';
import { decoderOf, type InputSpec } from '../data/input-spec.js';
import { pixelsToTensor } from '../data/preprocess.js';
import { loadTensorflow } from '../tf/tensorflow.js';
import { installFastKernels } from '../tf/fast-kernels.js';
import { tappedPredictor } from '../tf/native-predictor.js';
import { tidyRead } from '../tf/tidy-read.js';
import type { PluginRegistry } from '../plugin-api/plugin-registry.js';
import type { ArtifactStore } from '../data/artifact-store.js';
import { HyperParameters } from '../plugin-api/hyperparameters.js';
import type { BackboneSource, LoadedBackbone, ModelBackbone } from '../plugin-api/plugin.js';
import type { BackboneLoader } from '../training/backbone-loader.js';
import { backboneFeatures } from '../training/backbone-features.js';
import { loadModelThroughPlugin } from '../training/load-model.js';

type Tf = typeof import('@tensorflow/tfjs-node');

/** A registered model version, as serving names it. */
export interface VersionRef {
  name: string;
  version: number;
}

/** What one forward pass gives for each image, in input order. */
export interface ForwardResult {
  /** Class probabilities in `labels` order. */
  probabilities: Float32Array[];
  /** The embedding layer's output, L2-normalised (cosine distance = 1 − dot product). */
  embeddings: Float32Array[];
  /** The backbone's features (not normalised), for a transfer model's head; else absent. */
  features?: Float32Array[];
}

/**
 * A model ready to serve: one tfjs model with two outputs, [probabilities, embedding], so
 * a prediction and its embedding cost one forward pass. Its `inputSpec` is the one stored
 * with the version; callers decode with `decodeToPixels(bytes, model.inputSpec)`.
 */
export interface ServedModel {
  readonly ref: VersionRef;
  readonly labels: readonly string[];
  readonly inputSpec: InputSpec;
  readonly embeddingSize: number;
  /** The backbone a transfer model's head is fed by (its features come with each pass). */
  readonly backbone?: ModelBackbone;
  /** One forward pass over decoded images (from `decodeToPixels` with `inputSpec`). */
  forward(pixels: readonly Uint8Array[]): ForwardResult;
  /** Frees the weights; the model is unusable afterwards. Idempotent. */
  dispose(): void;
}

/**
 * Wraps a classifier as a ServedModel, adding its embedding layer as a second output. The
 * served model takes ownership: disposing it frees `model`'s weights.
 *
 * ```ts
 * const served = createServedModel(tf, model, {
 *   ref: { name: 'faces', version: 3 }, labels: ['cat', 'dog'], inputSpec, embeddingLayer: 'embedding',
 * });
 * const { probabilities, embeddings } = served.forward([pixels]);
 * ```
 */
export function createServedModel(
  tf: Tf,
  model: TfNode.LayersModel,
  options: {
    ref: VersionRef;
    labels: readonly string[];
    inputSpec: InputSpec;
    embeddingLayer: string;
    /** For a transfer model whose artifact is the head: the backbone that feeds it. */
    backbone?: { loaded: LoadedBackbone; record: ModelBackbone };
  },
): ServedModel {
  const layer = model.layers.find((l) => l.name === options.embeddingLayer);
  const classes = model.outputs[0];
  if (!layer || !classes) {
    model.dispose();
    throw new MenagerieError(
      'MODEL_ARTIFACT_INVALID',
      `${options.ref.name} version ${options.ref.version}: no layer '${options.embeddingLayer}' ` +
        `in the model (layers: ${model.layers.map((l) => l.name).join(', ')}) to embed with`,
    );
  }
  const embedding = layer.output as TfNode.SymbolicTensor;
  // Shares the classifier's weights; disposing it frees them (disposing both would fail).
  const both = tf.model({ inputs: model.inputs, outputs: [classes, embedding] });
  // Native ops when every layer allows (the reference CNN: 1.3× at 16 images, 2× at one,
  // against predict with the fast kernels); the same numbers to float rounding.
  const native = tappedPredictor(tf, model, [options.embeddingLayer]);
  const embeddingSize = embedding.shape.slice(1).reduce<number>((a, b) => a * (b ?? 1), 1);
  const { inputSpec, labels, backbone } = options;
  let disposed = false;
  return {
    ref: options.ref,
    labels,
    inputSpec,
    embeddingSize,
    ...(backbone && { backbone: backbone.record }),
    forward(pixels) {
      if (pixels.length === 0) return { probabilities: [], embeddings: [] };
      // Features through the path training took (view 0 of each image): the same vectors.
      const features = backbone
        ? backboneFeatures(
            tf,
            backbone.loaded,
            inputSpec,
            pixels.map((p) => ({ pixels: p, view: 0 })),
          )
        : undefined;
      const [probs, vectors] = tidyRead(tf, () => {
        const xs = features
          ? tf.tensor2d(concatFloats(features), [pixels.length, features[0]!.length])
          : pixelsToTensor(tf, pixels, inputSpec);
        const [p, e] = native ? native(xs) : (both.predict(xs) as TfNode.Tensor[]);
        const flat = e!.reshape([pixels.length, embeddingSize]);
        // The epsilon keeps an all-zero embedding (dead ReLUs) at zero instead of NaN.
        const unit = flat.div(flat.norm('euclidean', 1, true).add(1e-12));
        return [p!, unit];
      });
      const k = labels.length;
      return {
        probabilities: pixels.map((_, i) => probs.slice(i * k, (i + 1) * k)),
        embeddings: pixels.map((_, i) => vectors.slice(i * embeddingSize, (i + 1) * embeddingSize)),
        ...(features && { features }),
      };
    },
    dispose() {
      if (disposed) return;
      disposed = true;
      both.dispose();
    },
  };
}

/** What loading a version needs from the registry's ModelVersion. */
export interface ServableVersion extends VersionRef {
  /** Artifact URI (`file://`, `s3://`) or path of the saved model folder. */
  source: string;
  labels: readonly string[];
  inputSpec: InputSpec;
}

/**
 * Loads a registered version's artifact through the model plugin that built it (see
 * `loadModelThroughPlugin`) as a ServedModel. The artifact's manifest must
 * agree with the registry on labels and input spec: a model fed differently from how it
 * was trained is refused, not served.
 *
 * ```ts
 * const version = await registry.getVersionByAlias('faces', 'champion');
 * const served = await loadServedModel(version, workspace);
 * ```
 */
export async function loadServedModel(
  version: ServableVersion,
  loaders: ModelLoaders,
): Promise<ServedModel> {
  const tf = await loadTensorflow();
  // Fused conv+bias and oneDNN pooling: ~28% faster forward passes, same numbers.
  installFastKernels(tf);
  const dir = version.source;
  const { model, manifest, plugin } = await loadModelThroughPlugin(
    loaders.plugins,
    dir,
    loaders.artifacts,
  );
  const what = `${version.name} version ${version.version}`;
  const mismatch =
    JSON.stringify(manifest.labels) !== JSON.stringify(version.labels)
      ? `labels ${JSON.stringify(manifest.labels)} in ${dir}, ${JSON.stringify(version.labels)} in the registry`
      : !sameSpec(manifest.inputSpec, version.inputSpec)
        ? `input spec ${JSON.stringify(manifest.inputSpec)} in ${dir}, ${JSON.stringify(version.inputSpec)} in the registry`
        : null;
  if (mismatch) {
    model.dispose();
    throw new MenagerieError('MODEL_ARTIFACT_INVALID', `${what}: ${mismatch}`);
  }
  let backbone: { loaded: LoadedBackbone; record: ModelBackbone } | undefined;
  const record = manifest.backbone;
  if (record && !record.included) {
    try {
      const hp = new HyperParameters(manifest.hyperparameters);
      plugin.space(hp);
      const use = plugin.backbone?.(hp);
      if (!use) throw new Error(`its plugin '${plugin.name}' names no backbone for it`);
      const { loaded } = await loaders.backbones.load(use.backbone);
      if (loaded.weightsSha256 !== record.weightsSha256) {
        throw new Error(
          `it was trained on backbone ${record.name} with weights ${record.weightsSha256.slice(0, 12)}…, ` +
            `this machine has ${loaded.weightsSha256.slice(0, 12)}… (${describeSource(loaded.source)})`,
        );
      }
      backbone = { loaded, record };
    } catch (error) {
      model.dispose();
      if (error instanceof MenagerieError) throw error;
      throw new MenagerieError('MODEL_ARTIFACT_INVALID', `${what}: ${(error as Error).message}`, {
        cause: error,
      });
    }
  }
  return createServedModel(tf, model, {
    ref: { name: version.name, version: version.version },
    labels: version.labels,
    inputSpec: version.inputSpec,
    embeddingLayer: manifest.embeddingLayer,
    ...(backbone && { backbone }),
  });
}

/** What loading a model version needs: its model plugin, and backbones for transfer models. */
export interface ModelLoaders {
  plugins: PluginRegistry;
  backbones: BackboneLoader;
  /** Reads versions saved in a remote store (any replica loads any version). */
  artifacts?: ArtifactStore;
}

function describeSource(source: BackboneSource): string {
  return source.kind === 'package'
    ? `${source.package}@${source.packageVersion ?? '?'} ${source.location}`
    : source.location;
}

/** Rows of floats end to end, in one array. */
export function concatFloats(rows: readonly Float32Array[]): Float32Array {
  const out = new Float32Array(rows.reduce((n, r) => n + r.length, 0));
  let at = 0;
  for (const row of rows) {
    out.set(row, at);
    at += row.length;
  }
  return out;
}

function sameSpec(a: InputSpec, b: InputSpec): boolean {
  return (
    a.size === b.size &&
    a.channels === b.channels &&
    a.fit === b.fit &&
    a.scale === b.scale &&
    a.offset === b.offset &&
    decoderOf(a) === decoderOf(b)
  );
}
