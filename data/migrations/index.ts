import type { Migration } from 'kysely';
import * as labelsImages from './0001-labels-images.js';
import * as tracking from './0002-tracking.js';
import * as registry from './0003-registry.js';
import * as embeddings from './0004-embeddings.js';
import * as predictions from './0005-predictions.js';
import * as modelEvaluations from './0006-model-evaluations.js';

/**
 * Every migration, in order. Names sort in application order; a released name never
 * changes. Later issues append here.
 */
export const migrations: Record<string, Migration> = {
  '0001-labels-images': labelsImages,
  '0002-tracking': tracking,
  '0003-registry': registry,
  '0004-embeddings': embeddings,
  '0005-predictions': predictions,
  '0006-model-evaluations': modelEvaluations,
};
