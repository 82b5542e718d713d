import type { OpenDatabase } from '../data/database.js';
import { MenagerieError } from '../core/errors.js';
import { findImageById, sampleImages } from '../data/image-catalog.js';
import { getEmbeddingJob, modelVersionId } from './embedding-job.js';
import { vectorIndex } from './vector-index.js';
import { modelVersionSpace } from './vector-space.js';
import type { FeatureSpaceQueries } from './feature-space.js';
import type { VersionRef } from './served-model.js';

export const MAX_SIMILAR = 100;

export interface SimilarQuery {
  /** The serving version: its embeddings are searched, and must be READY; none: random. */
  version?: VersionRef;
  /** The query's embedding (from `engine.embed` or `predict(…, { embedding: true })`). */
  embedding?: Float32Array;
  /** Or an image already in the catalogue; it is left out of the answer. */
  imageId?: number;
  /** The label to search within: the predicted one; for `imageId` it defaults to the image's. */
  label?: string;
  /** How many images (1–100, default 10). */
  k?: number;
  /** Only images of `label` (default true). */
  sameLabel?: boolean;
}

export interface SimilarImage {
  imageId: number;
  label: string;
  /** Cosine distance to the query; null for random picks. */
  distance: number | null;
}

/**
 * Where neighbours are looked for: `features`, a pretrained backbone's feature space (the
 * same whichever classifier is champion), or `model-version`, the serving version's own
 * embedding space.
 */
export type SimilarSpace = 'features' | 'model-version';

export interface SimilarResult {
  /** 'embedding': nearest by cosine distance; 'random': images of the label, picked at random. */
  method: 'embedding' | 'random';
  /** The space searched; null for random picks. */
  space: SimilarSpace | null;
  /** Why 'random' was used (embeddings missing, still computing, failed…). */
  reason?: string;
  images: SimilarImage[];
}

/**
 * The images nearest to a query in the serving version's embedding space, nearest first,
 * within the query's label unless `sameLabel` is false. Until that version's embeddings
 * are READY it answers as the reference project did, with random images of the label,
 * and says so in `method`.
 *
 * ```ts
 * const p = await engine.predict(bytes, { embedding: true });
 * const { method, images } = await similarImages(database, {
 *   version: p.modelVersion, embedding: p.embedding, label: p.label, k: 10,
 * });
 * // method 'embedding': images[0] is the closest cat, with its cosine distance
 * ```
 */
export async function similarImages(
  database: OpenDatabase,
  query: SimilarQuery,
): Promise<SimilarResult> {
  const k = query.k ?? 10;
  const sameLabel = query.sameLabel ?? true;
  if (!Number.isInteger(k) || k < 1 || k > MAX_SIMILAR)
    throw invalid(`k should be a whole number from 1 to ${MAX_SIMILAR}, got ${k}`);
  if (!query.embedding && query.imageId === undefined)
    throw invalid('give the embedding of the query image or the id of a catalogue image');
  let label = query.label;
  if (query.imageId !== undefined) {
    const image = await findImageById(database.db, query.imageId);
    if (!image) throw new MenagerieError('IMAGE_NOT_FOUND', `no image has id ${query.imageId}`);
    label ??= image.label;
  }
  if (label === undefined && sameLabel)
    throw invalid('sameLabel needs a label: pass the predicted label');

  const random = async (reason: string): Promise<SimilarResult> => {
    if (label === undefined) throw invalid(`${reason}, and random images need a label`);
    const rows = await sampleImages(database.db, {
      label,
      n: k,
      ...(query.imageId !== undefined && { excludeIds: [query.imageId] }),
    });
    return {
      method: 'random',
      space: null,
      reason,
      images: rows.map((r) => ({ imageId: r.id, label: r.label, distance: null })),
    };
  };

  if (!query.version) return random('no model is serving');
  const { name, version } = query.version;
  const job = await getEmbeddingJob(database.db, query.version);
  if (job?.status !== 'READY' || job.dimension === null)
    return random(
      job
        ? `embeddings of ${name} version ${version} are ${job.status}` +
            (job.status === 'FAILED' ? ` (${job.error ?? 'no reason recorded'})` : '') +
            (job.status === 'RUNNING' ? ` (${job.done}/${job.total})` : '')
        : `embeddings of ${name} version ${version} were never computed`,
    );
  const vectors = vectorIndex(database);
  const space = modelVersionSpace(await modelVersionId(database.db, query.version));
  const dimension = await vectors.dimension(space);
  if (dimension === null)
    return random(`the embedding table of ${name} version ${version} is missing`);
  let vector = query.embedding ?? null;
  if (vector === null) {
    vector = await vectors.get(space, query.imageId!);
    if (vector === null) return random(`image ${query.imageId} was added after the embeddings`);
  }
  if (vector.length !== dimension)
    throw invalid(
      `the embedding has ${vector.length} values; ${name} version ${version} embeds in ${dimension}`,
    );
  const extra = query.imageId !== undefined ? 1 : 0;
  const neighbours = (
    await vectors.query(space, vector, k + extra, sameLabel ? { label: label! } : {})
  )
    .filter((n) => n.id !== query.imageId)
    .slice(0, k);
  return {
    method: 'embedding',
    space: 'model-version',
    images: neighbours.map((n) => ({ imageId: n.id, label: n.label, distance: n.distance })),
  };
}

/** A query for `findSimilar`: a catalogue image, or new bytes with what predict said. */
export interface FindSimilarQuery extends Omit<SimilarQuery, 'embedding'> {
  /** Where to look first (default `features`). */
  space?: SimilarSpace;
  /** The model version's embedding of new bytes (from the predict pass). */
  embedding?: Float32Array;
  /** New bytes: their feature-space vector is computed when that space answers. */
  bytes?: Uint8Array;
}

/**
 * Similar images in the space asked for, falling back to the other one (then to random
 * images of the label) while a space is not ready, and saying which answered and why.
 *
 * ```ts
 * const { space, method, images } = await findSimilar({ database, features }, {
 *   space: 'features', version: p.modelVersion, bytes: upload, label: p.label, k: 10,
 * });
 * ```
 */
export async function findSimilar(
  deps: { database: OpenDatabase; features: FeatureSpaceQueries | null },
  query: FindSimilarQuery,
): Promise<SimilarResult> {
  const k = query.k ?? 10;
  const sameLabel = query.sameLabel ?? true;
  if (!Number.isInteger(k) || k < 1 || k > MAX_SIMILAR)
    throw invalid(`k should be a whole number from 1 to ${MAX_SIMILAR}, got ${k}`);
  const byVersion = () =>
    query.embedding || query.imageId !== undefined
      ? similarImages(deps.database, {
          ...query,
          ...(query.embedding && { embedding: query.embedding }),
        })
      : Promise.reject(invalid('give the bytes, the embedding or the id of a catalogue image'));
  // No feature space configured: the version's space is the only one, nothing to explain.
  if ((query.space ?? 'features') !== 'features' || !deps.features) return byVersion();

  const ready = await deps.features.ready();
  let why: string;
  if ('space' in ready) {
    let label = query.label;
    let vector: Float32Array | null = null;
    if (query.imageId !== undefined) {
      const image = await findImageById(deps.database.db, query.imageId);
      if (!image) throw new MenagerieError('IMAGE_NOT_FOUND', `no image has id ${query.imageId}`);
      label ??= image.label;
      vector = await deps.features.vectorOfImage(ready.space, query.imageId);
    } else if (query.bytes) {
      vector = await deps.features.vectorOfBytes(ready.projection, query.bytes);
    }
    if (label === undefined && sameLabel)
      throw invalid('sameLabel needs a label: pass the predicted label');
    if (vector) {
      const extra = query.imageId !== undefined ? 1 : 0;
      const neighbours = (
        await vectorIndex(deps.database).query(
          ready.space.space,
          vector,
          k + extra,
          sameLabel ? { label: label! } : {},
        )
      )
        .filter((n) => n.id !== query.imageId)
        .slice(0, k);
      return {
        method: 'embedding',
        space: 'features',
        images: neighbours.map((n) => ({ imageId: n.id, label: n.label, distance: n.distance })),
      };
    }
    why = `image ${query.imageId} was added after the feature space was filled`;
  } else {
    why = ready.reason;
  }
  const fallback = await byVersion();
  return { ...fallback, reason: [why, fallback.reason].filter(Boolean).join('; ') };
}

function invalid(message: string): MenagerieError {
  return new MenagerieError('SIMILAR_QUERY_INVALID', message);
}
