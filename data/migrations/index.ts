import type { Migration } from 'kysely';
import * as labelsImages from './0001-labels-images.js';
import * as tracking from './0002-tracking.js';
import * as registry from './0003-registry.js';
import * as embeddings from './0004-embeddings.js';
import * as predictions from './0005-predictions.js';
import * as vectorSpaces from './0006-vector-spaces.js';
import * as uploadRetention from './0007-upload-retention.js';
import * as modelEvaluations from './0008-model-evaluations.js';
import * as featureSpaces from './0009-feature-spaces.js';
import * as tuningSearches from './0010-tuning-searches.js';

// How to write one that runs on SQLite and PostgreSQL alike: README.md in this folder.

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
  '0006-vector-spaces': vectorSpaces,
  '0007-upload-retention': uploadRetention,
  '0008-model-evaluations': modelEvaluations,
  '0009-feature-spaces': featureSpaces,
  '0010-tuning-searches': tuningSearches,
};
