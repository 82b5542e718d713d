import { createHash } from 'node:crypto';

/** One vector of a space: an image's embedding (or features) and its label. */
export interface VectorItem {
  /** The image's id (images.id). */
  id: number;
  label: string;
  vector: Float32Array;
}

export interface Neighbour {
  id: number;
  label: string;
  /** Cosine distance: 0 for the same direction, 2 for opposite. */
  distance: number;
}

export interface VectorQueryOptions {
  /** Only items of this label. */
  label?: string;
}

/** How a space answers queries: a full scan, or an HNSW graph (pgvector, large spaces). */
export type VectorSearchMethod = 'exact' | 'hnsw';

/**
 * Vectors by space (a model version's embedding space, a pretrained backbone's feature
 * space…), searched by cosine distance. One contract, two backends: sqlite-vec `vec0`
 * tables on SQLite, pgvector tables on PostgreSQL (exact scans, and an HNSW index once a
 * space passes a size threshold); `vectorIndex(database)` picks the one the database needs.
 *
 * ```ts
 * import { vectorIndex } from './serving/vector-index.js';
 * import { modelVersionSpace } from './serving/vector-space.js';
 * const index = vectorIndex(database);
 * const space = modelVersionSpace(7); // 'model-version:7'
 * await index.ensure(space, 128);
 * await index.upsert(space, [{ id: 1, label: 'cat', vector }]);
 * await index.query(space, vector, 10, { label: 'cat' }); // [{ id: 1, label: 'cat', distance: 0 }]
 * ```
 */
export interface VectorIndex {
  /** `sqlite-vec` or `pgvector`. */
  readonly kind: string;
  /**
   * Creates the space for vectors of `dimension` values if it is new (safe against a
   * concurrent creator); a space keeps its dimension, so another one is a RangeError.
   */
  ensure(space: string, dimension: number): Promise<void>;
  /** The space's dimension, or null when it was never created. */
  dimension(space: string): Promise<number | null>;
  /** Adds or replaces items by id, in one transaction. */
  upsert(space: string, items: readonly VectorItem[]): Promise<void>;
  delete(space: string, ids: readonly number[]): Promise<void>;
  count(space: string): Promise<number>;
  /** Every id stored: what a resumed job skips. */
  ids(space: string): Promise<Set<number>>;
  /** An item's vector, or null when it has none. */
  get(space: string, id: number): Promise<Float32Array | null>;
  /** The `k` nearest by cosine distance, nearest first; ties in id order. */
  query(
    space: string,
    vector: Float32Array,
    k: number,
    options?: VectorQueryOptions,
  ): Promise<Neighbour[]>;
  /**
   * Called when a space is filled: builds what makes queries fast at its size (an HNSW
   * index on pgvector past the threshold; nothing on sqlite-vec). Returns how queries
   * are answered from now on.
   */
  optimize(space: string): Promise<VectorSearchMethod>;
  /** Every space with its dimension and size (for copying a workspace). */
  spaces(): Promise<{ space: string; dimension: number; count: number }[]>;
  /** Items in id order after `afterId`, `limit` at a time (for copying a workspace). */
  scan(space: string, afterId: number, limit: number): Promise<VectorItem[]>;
  /** Removes the space and its vectors. */
  drop(space: string): Promise<void>;
}

export interface VectorIndexOptions {
  /** pgvector: build an HNSW index once a space holds this many vectors (default 50,000). */
  hnswThreshold?: number;
  /** pgvector: `hnsw.ef_search` for queries, at least k (default 100). */
  efSearch?: number;
}

/** The space of a model version's image embeddings. */
export function modelVersionSpace(modelVersionId: number): string {
  if (!Number.isSafeInteger(modelVersionId) || modelVersionId < 1)
    throw new RangeError(`model version id should be a positive integer, got ${modelVersionId}`);
  return `model-version:${modelVersionId}`;
}

/** The table of a new space: a hash of its name, so any string is a safe space name. */
export function vectorTableName(space: string): string {
  return `vectors_${createHash('sha256').update(space).digest('hex').slice(0, 24)}`;
}

export function checkDimension(dimension: number): void {
  if (!Number.isSafeInteger(dimension) || dimension < 1 || dimension > 16_000)
    throw new RangeError(`vector dimension should be a whole number 1–16000, got ${dimension}`);
}

export function checkVector(vector: Float32Array, dimension: number, space: string): void {
  if (vector.length !== dimension)
    throw new RangeError(`vector has ${vector.length} values, space '${space}' ${dimension}`);
}
