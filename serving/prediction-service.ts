import { createHash } from 'node:crypto';
import type { Selectable } from 'kysely';
import type { BlobStore } from '../data/blob-store.js';
import type { OpenDatabase } from '../data/database.js';
import { isMenagerieError, MenagerieError } from '../core/errors.js';
import type { CatalogImage } from '../data/image-catalog.js';
import { IMAGE_FORMATS, sniffImage } from '../data/image-probe.js';
import type { ImageService } from '../data/image-service.js';
import { normaliseLabel } from '../data/label-name.js';
import type { PredictionTable } from '../data/tables.js';
import { createUploadKeeper, type UploadKeeper } from '../data/upload-retention.js';
import type { ClassProbability, InferenceEngine } from './inference-engine.js';
import type { VersionRef } from './served-model.js';
import type { FeatureSpaceQueries } from './feature-space.js';
import { findSimilar, type SimilarResult, type SimilarSpace } from './similar-images.js';

/** A served prediction as recorded in the `predictions` table. */
export interface RecordedPrediction {
  id: number;
  label: string;
  confidence: number;
  uncertain: boolean;
  /** Every class, most probable first. */
  probabilities: ClassProbability[];
  modelVersion: VersionRef;
  latencyMs: number;
  createdAt: number;
  /** The upload's embedding from the same forward pass; only on fresh predictions. */
  embedding?: Float32Array;
  /** The upload's bytes, for similar images in the feature space; only on fresh predictions. */
  upload?: Uint8Array;
  feedbackLabel: string | null;
  feedbackAt: number | null;
  feedbackImageId: number | null;
}

export interface FeedbackResult {
  /** The image now in the data set with the corrected label. */
  image: CatalogImage;
  /** False when the bytes were already an image (it was relabelled, its split kept). */
  added: boolean;
}

/**
 * Predictions served and recorded, and the feedback that turns a judged upload into a
 * training image.
 *
 * ```ts
 * const predictions = createPredictionService({ database, blobs, images, engine });
 * const p = await predictions.predict(await fs.readFile('cat.jpg'));
 * await predictions.submitFeedback(p.id, 'wild'); // the upload joins `train` as wild
 * ```
 */
export interface PredictionService {
  /**
   * Sniffs the bytes (IMAGE_EMPTY, IMAGE_UNREADABLE, IMAGE_UNSUPPORTED_FORMAT,
   * IMAGE_TOO_LARGE; never the client's MIME type), classifies them with the serving model
   * (MODEL_NOT_SERVING without one), keeps the bytes for feedback (as `uploads` allows)
   * and records a row.
   */
  predict(bytes: Uint8Array): Promise<RecordedPrediction>;
  /** As `predict` for several images in shared forward passes; errors name the image. */
  predictBatch(images: readonly Uint8Array[]): Promise<RecordedPrediction[]>;
  get(id: number): Promise<RecordedPrediction | null>;
  /**
   * Images like a fresh prediction's upload, in the space asked for (falling back to the
   * other, then to random images of the predicted label, saying which answered).
   */
  similar(
    prediction: RecordedPrediction,
    options: { k: number; sameLabel: boolean; space: SimilarSpace },
  ): Promise<SimilarResult>;
  /**
   * Adds the prediction's upload to the data set with `correctLabel`, split `train`, and
   * records the feedback. Bytes already stored are that image, relabelled. Submitting again
   * replaces the earlier feedback. Throws PREDICTION_NOT_FOUND, PREDICTION_UPLOAD_EXPIRED
   * (the upload was not kept) or LABEL_INVALID.
   */
  submitFeedback(id: number, correctLabel: string): Promise<FeedbackResult>;
}

export function createPredictionService(deps: {
  database: OpenDatabase;
  blobs: BlobStore;
  images: ImageService;
  engine: InferenceEngine;
  /** Similar images in the pretrained feature space. */
  features: FeatureSpaceQueries | null;
  maxPixels?: number;
  /** Where uploads are kept for feedback (default: the blob store, default retention). */
  uploads?: UploadKeeper;
}): PredictionService {
  const { db } = deps.database;
  const keeper = deps.uploads ?? createUploadKeeper(deps);

  async function sniff(bytes: Uint8Array, name: string | null) {
    try {
      return await sniffImage(bytes, { maxPixels: deps.maxPixels });
    } catch (error) {
      if (name === null || !(error instanceof MenagerieError)) throw error;
      throw new MenagerieError(error.code, `${name}: ${error.message}`, { cause: error });
    }
  }

  async function predictMany(
    uploads: readonly Uint8Array[],
    single: boolean,
  ): Promise<RecordedPrediction[]> {
    const formats = await Promise.all(
      uploads.map((bytes, i) => sniff(bytes, single ? null : `image ${i}`)),
    );
    const hashes = uploads.map((bytes) => createHash('sha256').update(bytes).digest('hex'));
    const inference = single
      ? deps.engine.predict(uploads[0]!, { embedding: true }).then((p) => [p])
      : deps.engine.predictBatch(uploads, { embedding: true });
    // No model: MODEL_NOT_SERVING, before any bytes are kept.
    if (deps.engine.status().serving === null) await inference;
    // Inference and keeping the bytes overlap; the row is written once both are done.
    const [predictions, uris] = await Promise.all([
      inference,
      Promise.all(
        uploads.map((bytes, i) =>
          keeper.keep(bytes, { sha256: hashes[i]!, ext: IMAGE_FORMATS[formats[i]!.format] }),
        ),
      ),
    ]);
    const createdAt = Date.now();
    const rows = await db
      .insertInto('predictions')
      .values(
        predictions.map((p, i) => ({
          model_name: p.modelVersion.name,
          model_version: p.modelVersion.version,
          label: p.label,
          confidence: p.confidence,
          uncertain: p.uncertain ? 1 : 0,
          probabilities: JSON.stringify(p.probabilities),
          latency_ms: p.latencyMs,
          image_sha256: hashes[i]!,
          blob_uri: uris[i] ?? null,
          upload_bytes: uris[i] ? uploads[i]!.length : null,
          created_at: createdAt,
        })),
      )
      .returning('id')
      .execute();
    await keeper.recorded(uploads.reduce((n, bytes, i) => n + (uris[i] ? bytes.length : 0), 0));
    return predictions.map((p, i) => ({
      id: rows[i]!.id,
      label: p.label,
      confidence: p.confidence,
      uncertain: p.uncertain,
      probabilities: p.probabilities,
      modelVersion: p.modelVersion,
      latencyMs: p.latencyMs,
      createdAt,
      ...(p.embedding && { embedding: p.embedding }),
      upload: uploads[i]!,
      feedbackLabel: null,
      feedbackAt: null,
      feedbackImageId: null,
    }));
  }

  const findRow = (id: number) =>
    db.selectFrom('predictions').selectAll().where('id', '=', id).executeTakeFirst();

  return {
    async predict(bytes) {
      return (await predictMany([bytes], true))[0]!;
    },

    predictBatch: (images) =>
      images.length === 0 ? Promise.resolve([]) : predictMany(images, false),

    async get(id) {
      const row = await findRow(id);
      return row ? toRecorded(row) : null;
    },

    async similar(prediction, { k, sameLabel, space }) {
      if (!prediction.embedding || !prediction.upload) {
        throw new MenagerieError(
          'SIMILAR_QUERY_INVALID',
          `prediction ${prediction.id} is not fresh: similar images come with the predict answer`,
        );
      }
      return findSimilar(
        { database: deps.database, features: deps.features },
        {
          space,
          version: prediction.modelVersion,
          embedding: prediction.embedding,
          bytes: prediction.upload,
          label: prediction.label,
          k,
          sameLabel,
        },
      );
    },

    async submitFeedback(id, correctLabel) {
      const label = normaliseLabel(correctLabel);
      const row = await findRow(id);
      if (!row) throw new MenagerieError('PREDICTION_NOT_FOUND', `no prediction has id ${id}`);
      const expired = new MenagerieError(
        'PREDICTION_UPLOAD_EXPIRED',
        `prediction ${id}'s upload is no longer kept (uploads are kept for feedback under a ` +
          'retention limit, and not at all by a read-only server): add the image with addImage',
      );
      if (row.blob_uri === null) throw expired;
      const bytes = await deps.blobs.get(row.blob_uri).catch((error: unknown) => {
        throw isMenagerieError(error, 'BLOB_NOT_FOUND') ? expired : error;
      });
      const added = await deps.images.add(bytes, { label, split: 'train' });
      const image =
        added.duplicate && added.image.label !== label
          ? await deps.images.relabel(added.image.id, label)
          : added.image;
      await db
        .updateTable('predictions')
        .set({ feedback_label: label, feedback_at: Date.now(), feedback_image_id: image.id })
        .where('id', '=', id)
        .execute();
      return { image, added: !added.duplicate };
    },
  };
}

function toRecorded(row: Selectable<PredictionTable>): RecordedPrediction {
  return {
    id: row.id,
    label: row.label,
    confidence: row.confidence,
    uncertain: row.uncertain === 1,
    probabilities: JSON.parse(row.probabilities) as ClassProbability[],
    modelVersion: { name: row.model_name, version: row.model_version },
    latencyMs: row.latency_ms,
    createdAt: row.created_at,
    feedbackLabel: row.feedback_label,
    feedbackAt: row.feedback_at,
    feedbackImageId: row.feedback_image_id,
  };
}
