import type { OpenDatabase } from '../data/database.js';
import { pgVectorIndex } from './pg-vector-index.js';
import { sqliteVectorIndex } from './sqlite-vector-index.js';
import type { VectorIndex, VectorIndexOptions } from './vector-space.js';

export type {
  Neighbour,
  VectorIndex,
  VectorIndexOptions,
  VectorItem,
  VectorQueryOptions,
  VectorSearchMethod,
} from './vector-space.js';
export { modelVersionSpace } from './vector-space.js';

const shared = new WeakMap<OpenDatabase, VectorIndex>();

/**
 * The vector index of an open database (one per database unless `options` are given, so
 * its prepared statements and caches are shared).
 */
export function vectorIndex(database: OpenDatabase, options?: VectorIndexOptions): VectorIndex {
  if (options) return create(database, options);
  let index = shared.get(database);
  if (!index) shared.set(database, (index = create(database, {})));
  return index;
}

function create(database: OpenDatabase, options: VectorIndexOptions): VectorIndex {
  return database.backend === 'postgres'
    ? pgVectorIndex(database, options)
    : sqliteVectorIndex(database);
}
