import type SqliteDatabase from 'better-sqlite3';

/** One stored embedding. */
export interface EmbeddingRow {
  imageId: number;
  label: string;
  embedding: Float32Array;
}

export interface Neighbour {
  imageId: number;
  label: string;
  /** Cosine distance, 0 for the same direction, 2 for opposite. */
  distance: number;
}

/**
 * One model version's image embeddings in a sqlite-vec `vec0` table, partitioned by label
 * so a same-label search reads only that label's vectors.
 */
export interface EmbeddingStore {
  readonly table: string;
  readonly dimension: number;
  /** Adds or replaces rows, in one transaction. */
  put(rows: readonly EmbeddingRow[]): void;
  /** Ids already embedded: what a resumed job skips. */
  imageIds(): Set<number>;
  count(): number;
  /** The stored embedding of an image, or null when it has none. */
  get(imageId: number): Float32Array | null;
  /** The `k` nearest by cosine distance, nearest first; within `label` when given. */
  nearest(query: Float32Array, options: { k: number; label?: string }): Neighbour[];
}

/** `embeddings_<id>`: the id is model_versions.id, an integer, so the name is safe in SQL. */
export function embeddingTableName(modelVersionId: number): string {
  if (!Number.isSafeInteger(modelVersionId) || modelVersionId < 1)
    throw new RangeError(`model version id should be a positive integer, got ${modelVersionId}`);
  return `embeddings_${modelVersionId}`;
}

/**
 * Opens a version's embedding table, creating it when `create` is set (the job does; vec0
 * needs the dimension, known only once the model is loaded). Returns null when absent.
 *
 * ```ts
 * const store = openEmbeddingStore(database.sqlite, 7, { dimension: 128, create: true })!;
 * store.put([{ imageId: 1, label: 'cat', embedding }]);
 * store.nearest(embedding, { k: 10, label: 'cat' });
 * // SELECT image_id, label, distance FROM embeddings_7
 * //   WHERE embedding MATCH ? AND k = 10 AND label = 'cat'
 * ```
 */
export function openEmbeddingStore(
  sqlite: SqliteDatabase.Database,
  modelVersionId: number,
  options: { dimension: number; create?: boolean },
): EmbeddingStore | null {
  const table = embeddingTableName(modelVersionId);
  const { dimension } = options;
  if (!Number.isSafeInteger(dimension) || dimension < 1)
    throw new RangeError(`embedding dimension should be a positive integer, got ${dimension}`);
  if (options.create) {
    sqlite.exec(
      `CREATE VIRTUAL TABLE IF NOT EXISTS ${table} USING vec0(` +
        `image_id integer primary key, label text partition key, ` +
        `embedding float[${dimension}] distance_metric=cosine)`,
    );
  } else if (
    !sqlite.prepare("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?").get(table)
  ) {
    return null;
  }
  // vec0 accepts only integers for its primary key, and better-sqlite3 binds numbers as REAL.
  const insert = sqlite.prepare(
    `INSERT OR REPLACE INTO ${table} (image_id, label, embedding) VALUES (?, ?, ?)`,
  );
  const remove = sqlite.prepare(`DELETE FROM ${table} WHERE image_id = ?`);
  const putAll = sqlite.transaction((rows: readonly EmbeddingRow[]) => {
    for (const row of rows) {
      // vec0 ignores OR REPLACE on its primary key; delete first so a rerun can overwrite.
      remove.run(BigInt(row.imageId));
      insert.run(BigInt(row.imageId), row.label, vectorBytes(row.embedding, dimension));
    }
  });
  const selectIds = sqlite.prepare(`SELECT image_id FROM ${table}`).pluck();
  const selectCount = sqlite.prepare(`SELECT count(*) FROM ${table}`).pluck();
  const selectOne = sqlite.prepare(`SELECT embedding FROM ${table} WHERE image_id = ?`).pluck();
  const knn = sqlite.prepare(
    `SELECT image_id AS imageId, label, distance FROM ${table} ` +
      'WHERE embedding MATCH ? AND k = ? ORDER BY distance',
  );
  const knnLabel = sqlite.prepare(
    `SELECT image_id AS imageId, label, distance FROM ${table} ` +
      'WHERE embedding MATCH ? AND k = ? AND label = ? ORDER BY distance',
  );
  return {
    table,
    dimension,
    put: (rows) => putAll(rows),
    imageIds: () => new Set((selectIds.all() as (number | bigint)[]).map(Number)),
    count: () => Number(selectCount.get()),
    get(imageId) {
      const blob = selectOne.get(BigInt(imageId)) as Buffer | undefined;
      if (!blob) return null;
      return new Float32Array(
        blob.buffer.slice(blob.byteOffset, blob.byteOffset + blob.byteLength),
      );
    },
    nearest(query, { k, label }) {
      const bytes = vectorBytes(query, dimension);
      const rows = (
        label === undefined ? knn.all(bytes, k) : knnLabel.all(bytes, k, label)
      ) as Neighbour[];
      return rows.map((r) => ({
        imageId: Number(r.imageId),
        label: r.label,
        distance: r.distance,
      }));
    },
  };
}

function vectorBytes(vector: Float32Array, dimension: number): Buffer {
  if (vector.length !== dimension)
    throw new RangeError(`embedding has ${vector.length} values, the table ${dimension}`);
  return Buffer.from(vector.buffer, vector.byteOffset, vector.byteLength);
}
