import { createHash } from 'node:crypto';
import path from 'node:path';
import { isMenagerieError, MenagerieError } from '../core/errors.js';
import type { BlobStore } from '../data/blob-store.js';
import type { OpenDatabase } from '../data/database.js';
import { limiter } from '../data/dataset-records.js';
import {
  listEvaluationData,
  type EvaluationItem,
  type EvaluationSource,
} from '../data/evaluation-data.js';
import { imageRejectReason, type Rejection } from '../data/ingest/ingest-sources.js';
import { IMAGE_FORMATS, sniffImage } from '../data/image-probe.js';
import type { InputSpec } from '../data/input-spec.js';
import { decodeToPixels } from '../data/preprocess.js';
import { calibration } from '../training/calibration.js';
import { argMax, confusionMatrixPng, scoreProbabilities } from '../training/evaluation.js';
import type {
  ModelEvaluation,
  ModelEvaluations,
  UnknownLabel,
  WorstError,
} from '../registry/model-evaluations.js';
import type { ModelRegistry } from '../registry/model-registry.js';
import { modelUriOf } from '../registry/model-uri.js';
import { loadServedModel, type ModelLoaders } from './served-model.js';

/** The worst errors an evaluation keeps, with their images. */
export const WORST_ERRORS = 12;
const BATCH_SIZE = 32;
/** Decodes at once: sharp decodes on libuv's four threads; leave some to serving. */
const DECODE_CONCURRENCY = 4;

export interface EvaluationDeps {
  database: OpenDatabase;
  blobs: BlobStore;
  registry: ModelRegistry;
  evaluations: ModelEvaluations;
  /** Model plugins and backbones: the version loads exactly as serving loads it. */
  loaders: ModelLoaders;
}

export interface EvaluateOptions {
  /** `models:/faces@champion`, `models:/faces/3`, or the same without `models:/`. */
  model: string;
  data: EvaluationSource;
  /** Highest-confidence wrong predictions to keep (default 12). */
  worst?: number;
  /** Images per forward pass (default 32). */
  batchSize?: number;
  /** Recorded as who ran it (default: the OS user). */
  createdBy?: string;
  /** Pixel limit per image (default data/image-probe's). */
  maxPixels?: number;
  /** Aborting stops after the current batch: the evaluation ends KILLED. */
  signal?: AbortSignal;
  /** Once the evaluation exists (RUNNING), before any image is read. */
  onStart?(evaluation: ModelEvaluation): void;
  /** After each batch: files looked at, of those with a label the model knows. */
  onProgress?(progress: { done: number; total: number }): void;
}

/**
 * Evaluates a registered version on labelled images, as `mlflow.evaluate` does: every image
 * goes through the serving path (`loadServedModel`, `decodeToPixels` with the version's
 * input spec, `forward`), so a transfer model is fed through its backbone exactly as when it
 * serves. Scores accuracy, per-class precision/recall/F1, the confusion matrix and
 * calibration (ECE over 10 bins, with the reliability table), and keeps the most confident
 * mistakes with their images in the blob store. Unreadable files are reported with their
 * reason, never fatal; images of labels the model does not know are counted and left out.
 * The result is stored as an evaluation of the version (registry/model-evaluations.ts).
 *
 * Errors before the evaluation exists (MODEL_URI_INVALID, MODEL_NOT_FOUND, a missing folder,
 * a model that does not load) are thrown; after, the evaluation ends FAILED with the reason
 * and the error is thrown (EVALUATION_NO_IMAGES when nothing could be scored).
 *
 * ```ts
 * const evaluation = await evaluateModelVersion(
 *   { database, blobs, registry, evaluations, loaders: workspace },
 *   { model: 'models:/faces@champion', data: { split: 'val' } },
 * );
 * evaluation.scores?.accuracy; // 0.94
 * evaluation.scores?.calibration.ece; // 0.031
 * ```
 */
export async function evaluateModelVersion(
  deps: EvaluationDeps,
  options: EvaluateOptions,
): Promise<ModelEvaluation> {
  const version = await deps.registry.resolveModelUri(modelUriOf(options.model));
  const data = await listEvaluationData(deps, options.data);
  const served = await loadServedModel(version, deps.loaders);
  try {
    const classOf = new Map(served.labels.map((label, i) => [label, i]));
    const unknown = new Map<string, number>();
    const items = data.items.filter((item) => {
      if (classOf.has(item.label)) return true;
      unknown.set(item.label, (unknown.get(item.label) ?? 0) + 1);
      return false;
    });
    const unknownLabels: UnknownLabel[] = [...unknown]
      .sort(([a], [b]) => (a < b ? -1 : 1))
      .map(([label, count]) => ({ label, count }));
    const unreadable: Rejection[] = [...data.rejected];
    const evaluation = await deps.evaluations.start({
      name: version.name,
      version: version.version,
      dataset: { kind: data.kind, source: data.source },
      ...(options.createdBy !== undefined && { createdBy: options.createdBy }),
    });
    options.onStart?.(evaluation);
    const { id } = evaluation;
    const fail = async (status: 'FAILED' | 'KILLED', reason: string) =>
      deps.evaluations.end(id, status, reason, { unreadable, unknownLabels });
    try {
      const total = items.length;
      const batchSize = options.batchSize ?? BATCH_SIZE;
      const worst = worstErrors(options.worst ?? WORST_ERRORS);
      const scored: Scored[] = [];
      const decodeSlot = limiter(DECODE_CONCURRENCY);
      const report = async (done: number) => {
        await deps.evaluations.progress(id, done, total);
        options.onProgress?.({ done, total });
      };
      await report(0);
      for (let start = 0; start < total; start += batchSize) {
        if (options.signal?.aborted) {
          return await fail('KILLED', `cancelled after ${start} of ${total} images`);
        }
        const batch = items.slice(start, start + batchSize);
        const decoded = await Promise.all(
          batch.map((item) =>
            decodeSlot(() => decodeItem(item, served.inputSpec, options.maxPixels)),
          ),
        );
        const good: Decoded[] = [];
        decoded.forEach((d, i) => {
          if ('rejection' in d) unreadable.push(d.rejection);
          else good.push({ ...d, order: start + i });
        });
        const { probabilities } = served.forward(good.map((g) => g.pixels));
        good.forEach((g, i) => {
          const p = probabilities[i]!;
          const truth = classOf.get(g.item.label)!;
          const predicted = argMax(p);
          scored.push({ truth, probabilities: p, sha256: g.sha256, label: g.item.label });
          if (predicted !== truth) worst.offer({ ...g, truth, predicted, probabilities: p });
        });
        await report(Math.min(start + batchSize, total));
      }
      if (scored.length === 0) {
        const why =
          total === 0
            ? `none of the ${data.items.length} images has a label the model knows (${served.labels.join(', ')})`
            : `none of the ${total} images with a label the model knows could be read`;
        await fail('FAILED', `nothing to score: ${why}`);
        throw new MenagerieError('EVALUATION_NO_IMAGES', `${data.source}: ${why}`);
      }
      const metrics = scoreProbabilities(served.labels, scored);
      const png = await confusionMatrixPng(metrics.confusionMatrix, metrics.labels);
      return await deps.evaluations.finish(id, {
        imageCount: scored.length,
        datasetSha256: datasetSha256(scored),
        scores: {
          ...metrics,
          calibration: calibration(
            scored.map((s) => {
              const predicted = argMax(s.probabilities);
              return { confidence: s.probabilities[predicted]!, correct: predicted === s.truth };
            }),
          ),
        },
        unreadable,
        unknownLabels,
        worstErrors: await Promise.all(
          worst.list().map((w, i) => storeWorstError(deps.blobs, w, i + 1, served.labels)),
        ),
        confusionMatrixUri: await deps.blobs.put(png, { ext: 'png' }),
      });
    } catch (error) {
      if (!isMenagerieError(error, 'EVALUATION_NO_IMAGES'))
        await fail('FAILED', error instanceof Error ? error.message : String(error));
      throw error;
    }
  } finally {
    served.dispose();
  }
}

/**
 * sha256 over the sorted `<image sha256> <label>` lines: the same images with the same
 * labels give the same value, whatever their paths or order.
 */
export function datasetSha256(images: readonly { sha256: string; label: string }[]): string {
  const lines = images.map((i) => `${i.sha256} ${i.label}`).sort();
  return createHash('sha256').update(lines.join('\n')).digest('hex');
}

interface Scored {
  truth: number;
  probabilities: Float32Array;
  sha256: string;
  label: string;
}

interface Decoded {
  item: EvaluationItem;
  bytes: Buffer;
  sha256: string;
  format: string;
  pixels: Uint8Array;
  /** Position in the data, to break confidence ties the same way every time. */
  order: number;
}

type Mistake = Decoded & { truth: number; predicted: number; probabilities: Float32Array };

async function decodeItem(
  item: EvaluationItem,
  spec: InputSpec,
  maxPixels: number | undefined,
): Promise<Omit<Decoded, 'order'> | { rejection: Rejection }> {
  const reject = (reason: Rejection['reason'], error: unknown) => ({
    rejection: {
      path: item.source,
      reason,
      detail: error instanceof Error ? error.message : String(error),
    },
  });
  let bytes: Buffer;
  try {
    bytes = await item.read();
  } catch (error) {
    const missing =
      (error as NodeJS.ErrnoException).code === 'ENOENT' ||
      isMenagerieError(error, 'BLOB_NOT_FOUND');
    return reject(missing ? 'not-found' : 'unreadable', error);
  }
  try {
    // The header first: empty files, other formats and pixel bombs get their own reason.
    const { format } = await sniffImage(bytes, { ...(maxPixels !== undefined && { maxPixels }) });
    const pixels = await decodeToPixels(bytes, spec, path.basename(item.source));
    const sha256 = item.image?.sha256 ?? createHash('sha256').update(bytes).digest('hex');
    return { item, bytes, sha256, format, pixels };
  } catch (error) {
    const reason = imageRejectReason(error);
    if (!reason) throw error;
    return reject(reason, error);
  }
}

/** The `n` most confident mistakes seen so far; ties go to the earlier image. */
function worstErrors(n: number) {
  let kept: Mistake[] = [];
  const confidence = (m: Mistake) => m.probabilities[m.predicted]!;
  return {
    offer(mistake: Mistake) {
      if (n <= 0) return;
      // Only the kept few hold their bytes; the rest are dropped as they come.
      kept.push(mistake);
      kept.sort((a, b) => confidence(b) - confidence(a) || a.order - b.order);
      if (kept.length > n) kept = kept.slice(0, n);
    },
    list: () => kept,
  };
}

async function storeWorstError(
  blobs: BlobStore,
  m: Mistake,
  rank: number,
  labels: readonly string[],
): Promise<WorstError> {
  // A catalogue image's bytes are in the store already; a file's are put there.
  const blobUri =
    m.item.image?.uri ??
    (await blobs.put(m.bytes, { sha256: m.sha256, ext: IMAGE_FORMATS[m.format] }));
  return {
    rank,
    source: m.item.source,
    imageId: m.item.image?.id ?? null,
    blobUri,
    sha256: m.sha256,
    format: m.format,
    trueLabel: labels[m.truth]!,
    predictedLabel: labels[m.predicted]!,
    confidence: m.probabilities[m.predicted]!,
    probabilities: [...m.probabilities],
  };
}
