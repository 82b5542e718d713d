import { spawn, type ChildProcess } from 'node:child_process';
import os from 'node:os';
import path from 'node:path';
import type { Kysely, Selectable } from 'kysely';
import { isMenagerieError, MenagerieError } from '../core/errors.js';
import { createRng } from '../core/random.js';
import type { BlobStore } from '../data/blob-store.js';
import { shuffleInPlace } from '../data/dataset-records.js';
import type { OpenDatabase } from '../data/database.js';
import { decodeToPixels } from '../data/preprocess.js';
import type { Database, EmbeddingJobStatus, FeatureSpaceTable } from '../data/tables.js';
import { loadTensorflow } from '../tf/tensorflow.js';
import type { Backbone, BackboneLoader } from '../training/backbone-loader.js';
import { backboneFeatures } from '../training/backbone-features.js';
import { computeFeatures, openBackboneFeatureCache } from '../training/feature-dataset.js';
import { staleJobReason } from './embedding-job.js';
import { fitProjection, project, type Projection } from './pca.js';
import { vectorIndex, type VectorIndex } from './vector-index.js';

/** The backbone similar images use by default, whichever classifier is champion. */
export const DEFAULT_SIMILARITY_BACKBONE = 'menagerie:mobilenet_v2_140';
/**
 * Dimensions of the space: 1792 features projected on their 128 principal components scan
 * 14× faster (top-10 over 20,000 images under 5 ms) and agree with the label as well.
 */
export const FEATURE_SPACE_DIMENSIONS = 128;
/** The projection is fitted on at most this many images (a seeded sample). */
const PROJECTION_SAMPLE = 10_000;
const BIN = path.resolve(import.meta.dirname, '../bin/menagerie.js');

/** A feature space as its row says. */
export interface FeatureSpace {
  /** The vector index's space name. */
  space: string;
  backbone: string;
  weightsSha256: string;
  dimension: number;
  status: EmbeddingJobStatus;
  done: number;
  total: number;
  error: string | null;
}

/** The space of a backbone's weights at `dimensions`: other weights are another space. */
export function featureSpaceName(backbone: string, weightsSha256: string, dimensions: number) {
  return `features:${backbone}:${weightsSha256.slice(0, 16)}:pca${dimensions}`;
}

function toSpace(row: Selectable<FeatureSpaceTable>): FeatureSpace {
  return {
    space: row.space,
    backbone: row.backbone,
    weightsSha256: row.weights_sha256,
    dimension: row.dimension,
    status: row.status,
    done: row.done,
    total: row.total,
    error: row.error,
  };
}

/** The newest feature space of a backbone (by plugin name), or null. */
export async function getFeatureSpace(
  db: Kysely<Database>,
  backbone: string,
): Promise<FeatureSpace | null> {
  const row = await db
    .selectFrom('feature_spaces')
    .selectAll()
    .where('backbone', '=', backbone)
    .orderBy('id', 'desc')
    .executeTakeFirst();
  return row ? toSpace(row) : null;
}

/**
 * Marks FAILED the running feature-space jobs whose process is gone (this host) or silent
 * for 10 minutes (elsewhere), as `failStaleEmbeddingJobs` does for model versions.
 */
async function failStaleJobs(db: Kysely<Database>): Promise<void> {
  const now = Date.now();
  for (const job of await db
    .selectFrom('feature_spaces')
    .selectAll()
    .where('status', 'in', ['PENDING', 'RUNNING'])
    .execute()) {
    const reason = staleJobReason(job, { now });
    if (reason)
      await db
        .updateTable('feature_spaces')
        .set({ status: 'FAILED', error: reason, finished_at: now, updated_at: now })
        .where('id', '=', job.id)
        .where('status', '=', job.status)
        .execute();
  }
}

/** Claims a space's row for `pid`, creating it; refuses while another live process holds it. */
async function claim(
  db: Kysely<Database>,
  row: Pick<FeatureSpaceTable, 'space' | 'backbone' | 'weights_sha256' | 'features' | 'dimension'>,
  status: 'PENDING' | 'RUNNING',
  pid: number | null,
): Promise<void> {
  await failStaleJobs(db);
  const now = Date.now();
  await db.transaction().execute(async (trx) => {
    const existing = await trx
      .selectFrom('feature_spaces')
      .select(['status', 'pid'])
      .where('space', '=', row.space)
      .executeTakeFirst();
    if (
      existing &&
      (existing.status === 'RUNNING' || existing.status === 'PENDING') &&
      existing.pid !== pid &&
      !(status === 'RUNNING' && existing.status === 'PENDING')
    )
      throw new MenagerieError(
        'EMBEDDING_JOB_RUNNING',
        `the ${row.backbone} feature space is already being filled by process ${existing.pid ?? '(starting)'}`,
      );
    const state = {
      status,
      pid,
      hostname: os.hostname(),
      error: null,
      started_at: now,
      updated_at: now,
    };
    await trx
      .insertInto('feature_spaces')
      .values({ ...row, ...state, finished_at: null })
      .onConflict((oc) => oc.column('space').doUpdateSet({ ...state, finished_at: null }))
      .execute();
  });
}

/** Everything the feature space needs from an open workspace. */
export interface FeatureSpaceDeps {
  database: OpenDatabase;
  blobs: BlobStore;
  backbones: BackboneLoader;
  /** `<dataDir>/cache`: the feature cache, shared with training. */
  cacheDir: string;
  /** Default: the database's own index. */
  vectors?: VectorIndex;
}

/**
 * Fills the backbone's feature space with every catalogue image, in this process (the
 * `menagerie embed --features` child runs it): each image's features (view 0, through the
 * feature cache training fills too), centred and projected on their principal components
 * (fitted once per space on a seeded sample, kept as a blob so every replica projects
 * queries alike), stored in the vector index with the image's label. Resumable: images
 * already in the space are skipped; an image that no longer decodes is skipped and named.
 *
 * ```ts
 * const space = await runFeatureSpaceJob(workspace, {}); // space.status === 'READY'
 * ```
 */
export async function runFeatureSpaceJob(
  deps: FeatureSpaceDeps,
  options: {
    backbone?: string;
    dimensions?: number;
    onProgress?(progress: { done: number; total: number }): void;
  } = {},
): Promise<FeatureSpace> {
  const { db } = deps.database;
  const vectors = deps.vectors ?? vectorIndex(deps.database);
  const backbone = await deps.backbones.load(options.backbone ?? DEFAULT_SIMILARITY_BACKBONE);
  const features = backbone.loaded.featureSize;
  const dimension = Math.min(options.dimensions ?? FEATURE_SPACE_DIMENSIONS, features);
  const space = featureSpaceName(backbone.plugin.name, backbone.loaded.weightsSha256, dimension);
  const row = {
    space,
    backbone: backbone.plugin.name,
    weights_sha256: backbone.loaded.weightsSha256,
    features,
    dimension,
  };
  await claim(db, row, 'RUNNING', process.pid);
  const update = (values: Partial<Omit<Selectable<FeatureSpaceTable>, 'id'>>) =>
    db
      .updateTable('feature_spaces')
      .set({ ...values, updated_at: Date.now() })
      .where('space', '=', space)
      .execute();
  try {
    const images = await db
      .selectFrom('images')
      .innerJoin('labels', 'labels.id', 'images.label_id')
      .select(['images.id', 'images.uri', 'images.sha256', 'labels.name as label'])
      .orderBy('images.id')
      .execute();
    await vectors.ensure(space, dimension);
    const stored = await vectors.ids(space);
    const todo = images.filter((image) => !stored.has(image.id));
    await update({ total: images.length, done: images.length - todo.length });
    const cache = await openBackboneFeatureCache(deps.cacheDir, backbone);
    const skipped: string[] = [];
    try {
      await computeFeatures({
        blobs: deps.blobs,
        backbone,
        records: todo,
        views: 1,
        cache,
        onUnreadable: (image, error) => skipped.push(`image ${image.id}: ${error.code}`),
        onProgress: (p) => {
          const done = images.length - todo.length + p.done;
          options.onProgress?.({ done, total: images.length });
          void update({ done });
        },
      });
      const tf = await loadTensorflow();
      let projection = await readProjection(deps, space);
      if (!projection) {
        // Fitted on a seeded sample of the whole catalogue, once: a space keeps its axes.
        const sample = images.filter((image) => cache.has(image.sha256, 0));
        shuffleInPlace(sample, createRng(`projection/${space}`));
        projection = fitProjection(
          tf,
          sample.slice(0, PROJECTION_SAMPLE).map((image) => cache.get(image.sha256, 0)!),
          dimension,
          1,
        );
        await update({ projection_uri: await deps.blobs.put(encodeProjection(projection)) });
      }
      const ready = todo.filter((image) => cache.has(image.sha256, 0));
      for (let start = 0; start < ready.length; start += 500) {
        const chunk = ready.slice(start, start + 500);
        const projected = project(
          tf,
          projection,
          chunk.map((image) => cache.get(image.sha256, 0)!),
        );
        await vectors.upsert(
          space,
          chunk.map((image, i) => ({ id: image.id, label: image.label, vector: projected[i]! })),
        );
      }
    } finally {
      await cache.close();
    }
    await vectors.optimize(space);
    await update({
      status: 'READY',
      done: images.length,
      finished_at: Date.now(),
      error: skipped.length
        ? `skipped ${skipped.length}: ${skipped.slice(0, 10).join(', ')}`
        : null,
    });
  } catch (error) {
    const message = error instanceof Error ? error.message : String(error);
    await update({ status: 'FAILED', error: message, finished_at: Date.now() });
    throw error;
  }
  return (await getFeatureSpace(db, backbone.plugin.name))!;
}

/**
 * Starts `menagerie embed --features` in a child process, so serving never stalls on it:
 * when the catalogue has images the backbone's space lacks (or it never was filled). Null
 * when there is nothing to do; EMBEDDING_JOB_RUNNING when another process fills it.
 */
export async function startFeatureSpaceJob(
  deps: { database: OpenDatabase; dataDir: string; vectors?: VectorIndex },
  options: { backbone?: string } = {},
): Promise<{ child: ChildProcess; finished: Promise<FeatureSpace | null> } | null> {
  const { db } = deps.database;
  const backbone = options.backbone ?? DEFAULT_SIMILARITY_BACKBONE;
  await failStaleJobs(db);
  const current = await getFeatureSpace(db, backbone);
  if (current?.status === 'RUNNING' || current?.status === 'PENDING') return null;
  const images = Number(
    (
      await db
        .selectFrom('images')
        .select((eb) => eb.fn.countAll<number>().as('n'))
        .executeTakeFirstOrThrow()
    ).n,
  );
  // An empty catalogue has nothing to fill; the first images added start the job.
  if (images === 0) return null;
  if (current?.status === 'READY') {
    const vectors = deps.vectors ?? vectorIndex(deps.database);
    if ((await vectors.count(current.space)) >= images) return null;
  }
  const args = [BIN, '--data-dir', deps.dataDir, 'embed', '--features', '--backbone', backbone];
  const child = spawn(process.execPath, args, { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr?.on('data', (chunk: Buffer) => {
    stderr = (stderr + chunk.toString('utf8')).slice(-4000);
  });
  const finished = new Promise<FeatureSpace | null>((resolve, reject) => {
    child.on('error', reject);
    child.on('close', (code, signal) => {
      void (async () => {
        if (code !== 0) {
          const now = Date.now();
          // The child's row is final unless it died first; then say how.
          await db
            .updateTable('feature_spaces')
            .set({
              status: 'FAILED',
              error: `menagerie embed --features exited with ${signal ?? `code ${code}`}: ${stderr.trim().split('\n').at(-1) ?? ''}`,
              finished_at: now,
              updated_at: now,
            })
            .where('backbone', '=', backbone)
            .where('status', 'in', ['PENDING', 'RUNNING'])
            // Only its own row: a child refused because another process (a replica's)
            // fills the space must not fail that one.
            .where('pid', '=', child.pid ?? -1)
            .execute();
        }
        return getFeatureSpace(db, backbone);
      })().then(resolve, reject);
    });
  });
  return { child, finished };
}

/**
 * Queries in a backbone's feature space: the vectors of catalogue images and of new images
 * (computed through the same path as the stored ones, then projected the same way).
 */
export interface FeatureSpaceQueries {
  /** The READY space of the backbone, or null (with why) when it cannot answer yet. */
  ready(): Promise<{ space: FeatureSpace; projection: Projection } | { reason: string }>;
  /** A catalogue image's stored vector, or null when the image is not in the space yet. */
  vectorOfImage(space: FeatureSpace, imageId: number): Promise<Float32Array | null>;
  /** The projected vector of image bytes (decoded with the backbone's input spec). */
  vectorOfBytes(projection: Projection, bytes: Uint8Array): Promise<Float32Array>;
}

export function featureSpaceQueries(
  deps: FeatureSpaceDeps,
  options: { backbone?: string } = {},
): FeatureSpaceQueries {
  const name = options.backbone ?? DEFAULT_SIMILARITY_BACKBONE;
  const vectors = () => deps.vectors ?? vectorIndex(deps.database);
  const projections = new Map<string, Promise<Projection | null>>();
  let backbone: Promise<Backbone> | undefined;
  return {
    async ready() {
      const space = await getFeatureSpace(deps.database.db, name);
      if (space?.status !== 'READY')
        return {
          reason: space
            ? `the ${name} feature space is ${space.status}` +
              (space.status === 'RUNNING' ? ` (${space.done}/${space.total})` : '') +
              (space.status === 'FAILED' ? ` (${space.error ?? 'no reason recorded'})` : '')
            : `the ${name} feature space was never computed`,
        };
      let projection = projections.get(space.space);
      if (!projection) {
        projection = readProjection(deps, space.space);
        projections.set(space.space, projection);
        projection.catch(() => projections.delete(space.space));
      }
      const loaded = await projection;
      return loaded
        ? { space, projection: loaded }
        : { reason: `${space.space} has no projection` };
    },
    vectorOfImage: (space, imageId) => vectors().get(space.space, imageId),
    async vectorOfBytes(projection, bytes) {
      backbone ??= deps.backbones.load(name);
      backbone.catch(() => (backbone = undefined));
      const { plugin, loaded } = await backbone;
      const tf = await loadTensorflow();
      const pixels = await decodeToPixels(bytes, plugin.inputSpec, 'image');
      const [features] = backboneFeatures(tf, loaded, plugin.inputSpec, [{ pixels, view: 0 }]);
      return project(tf, projection, [features!])[0]!;
    },
  };
}

async function readProjection(deps: FeatureSpaceDeps, space: string): Promise<Projection | null> {
  const row = await deps.database.db
    .selectFrom('feature_spaces')
    .select(['projection_uri', 'features', 'dimension'])
    .where('space', '=', space)
    .executeTakeFirst();
  if (!row?.projection_uri) return null;
  try {
    return decodeProjection(await deps.blobs.get(row.projection_uri), row.features, row.dimension);
  } catch (error) {
    if (!isMenagerieError(error)) throw error;
    return null;
  }
}

/** float32 little-endian: the mean, then the components row by row. */
function encodeProjection(projection: Projection): Buffer {
  const out = new Float32Array(projection.features * (projection.dimensions + 1));
  out.set(projection.mean, 0);
  out.set(projection.components, projection.features);
  return Buffer.from(out.buffer);
}

function decodeProjection(bytes: Buffer, features: number, dimensions: number): Projection {
  const expected = features * (dimensions + 1) * 4;
  if (bytes.length !== expected)
    throw new MenagerieError(
      'BLOB_NOT_FOUND',
      `a projection of ${dimensions}×${features} is ${expected} bytes, the blob holds ${bytes.length}`,
    );
  const values = new Float32Array(
    bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.length),
  );
  return {
    mean: values.slice(0, features),
    components: values.slice(features),
    dimensions,
    features,
  };
}
