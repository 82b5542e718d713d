import type { Kysely } from 'kysely';
import type { Database } from './tables.js';

// The rows that name blobs: images, the uploads predictions keep for feedback, what
// evaluations keep (their worst errors' images and confusion-matrix PNGs), and the feature
// spaces' projections. A blob is deleted
// only when none of them names it; a table that stores a blob URI is listed here, once, for
// the sweep and for single deletes alike.

/**
 * Every blob URI some row names, for sweeping orphans.
 *
 * ```ts
 * const inUse = await namedBlobUris(db);
 * ```
 */
export async function namedBlobUris(db: Kysely<Database>): Promise<Set<string>> {
  const rows = await db
    .selectFrom('images')
    .select('uri')
    .union(
      db
        .selectFrom('predictions')
        .select('blob_uri as uri')
        .where('blob_uri', 'is not', null) // predictions that kept no bytes
        .$narrowType<{ uri: string }>(),
    )
    .union(db.selectFrom('model_evaluation_errors').select('blob_uri as uri'))
    .union(
      db
        .selectFrom('model_evaluations')
        .select('confusion_matrix_uri as uri')
        .where('confusion_matrix_uri', 'is not', null)
        .$narrowType<{ uri: string }>(),
    )
    .union(
      db
        .selectFrom('feature_spaces')
        .select('projection_uri as uri')
        .where('projection_uri', 'is not', null)
        .$narrowType<{ uri: string }>(),
    )
    .execute();
  return new Set(rows.map((r) => r.uri));
}

/**
 * Whether any row names `uri`, before deleting its blob.
 *
 * ```ts
 * if (!(await isBlobNamed(db, image.uri))) await blobs.delete(image.uri);
 * ```
 */
export async function isBlobNamed(db: Kysely<Database>, uri: string): Promise<boolean> {
  const row = await db
    .selectFrom('images')
    .select('uri')
    .where('uri', '=', uri)
    .union(
      db
        .selectFrom('predictions')
        .select('blob_uri as uri')
        .where('blob_uri', '=', uri)
        .$narrowType<{ uri: string }>(),
    )
    .union(
      db
        .selectFrom('model_evaluation_errors')
        .select('blob_uri as uri')
        .where('blob_uri', '=', uri),
    )
    .union(
      db
        .selectFrom('model_evaluations')
        .select('confusion_matrix_uri as uri')
        .where('confusion_matrix_uri', '=', uri)
        .$narrowType<{ uri: string }>(),
    )
    .union(
      db
        .selectFrom('feature_spaces')
        .select('projection_uri as uri')
        .where('projection_uri', '=', uri)
        .$narrowType<{ uri: string }>(),
    )
    .executeTakeFirst();
  return row !== undefined;
}
