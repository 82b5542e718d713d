/**
 * The one catalogue of Menagerie's error codes. Codes are area-first and stable: clients
 * match on them (GraphQL puts them in `extensions.code`), so a code is never renamed.
 * Each has a documented fix in docs/errors.md; tests/errors.test.ts keeps the two in step.
 *
 * ```ts
 * import { MenagerieError } from './errors.js';
 * throw new MenagerieError('IMAGE_UNREADABLE', 'truncated.jpg: premature end of JPEG data');
 * ```
 */
export const ERROR_CODES = [
  'CONFIG_INVALID',
  'DATA_DIR_UNUSABLE',
  'DB_SCHEMA_TOO_NEW',
  'DB_MIGRATION_FAILED',
  'BLOB_NOT_FOUND',
  'BLOB_URI_UNSUPPORTED',
  'IMAGE_EMPTY',
  'IMAGE_UNREADABLE',
  'IMAGE_UNSUPPORTED_FORMAT',
  'IMAGE_TOO_LARGE',
  'IMAGE_NOT_FOUND',
  'INGEST_SOURCE_NOT_FOUND',
  'INGEST_UNKNOWN_FOLDER',
  'INGEST_MANIFEST_INVALID',
  'LABEL_INVALID',
  'CURSOR_INVALID',
  'DATASET_EMPTY',
  'LABEL_NOT_FOUND',
  'BAD_REQUEST',
  'BAD_USER_INPUT',
  'CSRF_PREFLIGHT_REQUIRED',
  'UNAUTHENTICATED',
  'FORBIDDEN',
  'QUERY_PARSE_FAILED',
  'QUERY_INVALID',
  'QUERY_TOO_DEEP',
  'QUERY_TOO_COMPLEX',
  'UPLOAD_TOO_LARGE',
  'UPLOAD_TOO_MANY_FILES',
  'UPLOAD_INVALID',
  'INTERNAL_SERVER_ERROR',
  'PLUGIN_INVALID',
  'PLUGIN_NAME_CLASH',
  'PLUGIN_NOT_FOUND',
  'TF_BACKEND_UNAVAILABLE',
  'EXPERIMENT_NAME_INVALID',
  'EXPERIMENT_NOT_FOUND',
  'EXPERIMENT_EXISTS',
  'EXPERIMENT_NOT_ACTIVE',
  'RUN_NOT_FOUND',
  'RUN_NOT_ACTIVE',
  'RUN_DATA_INVALID',
  'RUN_ARTIFACT_INVALID',
  'PARAM_CONFLICT',
  'RUN_FILTER_INVALID',
  'RUN_ARTIFACT_NOT_FOUND',
  'RUN_NOT_OWNED',
  'JOB_LIMIT',
  'JOB_START_FAILED',
  'INGEST_PATH_FORBIDDEN',
  'MODEL_NAME_INVALID',
  'MODEL_NOT_FOUND',
  'MODEL_EXISTS',
  'MODEL_IN_USE',
  'MODEL_VERSION_NOT_FOUND',
  'MODEL_VERSION_NOT_READY',
  'MODEL_VERSION_IN_USE',
  'MODEL_ALIAS_INVALID',
  'MODEL_ALIAS_NOT_FOUND',
  'MODEL_STAGE_INVALID',
  'MODEL_URI_INVALID',
  'MODEL_ARTIFACT_INVALID',
  'MODEL_BASE_UNAVAILABLE',
  'HP_INVALID',
  'TUNING_TOO_MANY_FAILURES',
  'TUNING_STATE_INVALID',
  'MODEL_NOT_SERVING',
  'EMBEDDING_JOB_RUNNING',
  'EMBEDDING_JOB_FAILED',
  'SIMILAR_QUERY_INVALID',
  'PREDICTION_NOT_FOUND',
] as const;

export type ErrorCode = (typeof ERROR_CODES)[number];

/** An error whose `code` a caller can act on; the message says what was wrong. */
export class MenagerieError extends Error {
  readonly code: ErrorCode;

  constructor(code: ErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'MenagerieError';
    this.code = code;
  }
}

export function isMenagerieError(error: unknown, code?: ErrorCode): error is MenagerieError {
  return error instanceof MenagerieError && (code === undefined || error.code === code);
}
