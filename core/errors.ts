/** An HTTP status an error can decide. */
export type ErrorStatus = 400 | 401 | 403 | 404 | 409 | 410 | 413 | 415 | 429 | 500 | 503;

export interface ErrorSpec {
  /**
   * The HTTP status when the error decides the response's: always on the REST routes
   * (`/images/…`, `/runs/…/artifacts/…`); on a GraphQL response only for a request-level
   * failure (bad token, CSRF, unparsable body, query limits). An error a resolver raises
   * leaves with 200, as GraphQL over HTTP says, its code in `extensions.code`.
   */
  readonly status: ErrorStatus;
  /** What it means, in one line: docs/errors.md's "what happened", word for word. */
  readonly summary: string;
}

/**
 * The one catalogue of Menagerie's error codes: each code's HTTP status and meaning.
 * Codes are area-first and stable: clients match on them (GraphQL puts them in
 * `extensions.code`), so a code is never renamed. Each has a documented fix in
 * docs/errors.md; tests/core/errors.test.ts keeps the table and the docs in step.
 *
 * ```ts
 * import { ERRORS, MenagerieError } from './errors.js';
 * throw new MenagerieError('IMAGE_UNREADABLE', 'truncated.jpg: premature end of JPEG data');
 * ERRORS.IMAGE_NOT_FOUND.status; // 404, as GET /images/:id answers it
 * ```
 */
export const ERRORS = {
  CONFIG_INVALID: {
    status: 400,
    summary: 'A configuration value or command-line option has the wrong type or range.',
  },
  DATA_DIR_UNUSABLE: {
    status: 500,
    summary: 'The data directory cannot be created or written.',
  },
  DB_SCHEMA_TOO_NEW: {
    status: 500,
    summary: 'The database was migrated by a newer Menagerie than this one.',
  },
  DB_MIGRATION_FAILED: {
    status: 500,
    summary: 'A schema migration failed; its transaction was rolled back.',
  },
  DB_UNAVAILABLE: {
    status: 503,
    summary:
      'The PostgreSQL server named by the database URL cannot be reached or refused the login.',
  },
  STORE_UNAVAILABLE: {
    status: 503,
    summary:
      'The object store (S3) cannot be reached, refused the credentials, or has no such bucket.',
  },
  STORE_COPY_MISMATCH: {
    status: 500,
    summary: 'After `migrate-store`, a count or a sha256 in the target differs from the source.',
  },
  BLOB_NOT_FOUND: {
    status: 404,
    summary:
      'An image row names bytes the blob store does not have (a `--reference` file moved or deleted).',
  },
  BLOB_URI_UNSUPPORTED: {
    status: 500,
    summary: 'A URI has a scheme no configured storage plugin reads, or is malformed.',
  },
  IMAGE_EMPTY: {
    status: 400,
    summary: 'The file or upload has 0 bytes.',
  },
  IMAGE_UNREADABLE: {
    status: 400,
    summary: 'The bytes are not a decodable image: truncated, corrupt, or another kind of file.',
  },
  IMAGE_UNSUPPORTED_FORMAT: {
    status: 415,
    summary: 'A real image, in a format Menagerie does not store (GIF, TIFF, SVG…).',
  },
  IMAGE_TOO_LARGE: {
    status: 413,
    summary:
      'The image has more pixels than the limit (a decompression-bomb guard), or the upload is over the size cap.',
  },
  IMAGE_NOT_FOUND: {
    status: 404,
    summary: 'No image has that id or sha256.',
  },
  INGEST_SOURCE_NOT_FOUND: {
    status: 404,
    summary: 'The ingest source does not exist, or is a file that is not a `.csv` manifest.',
  },
  INGEST_MANIFEST_INVALID: {
    status: 400,
    summary: 'The CSV manifest cannot be parsed or lacks `path` and `label` columns.',
  },
  LABEL_INVALID: {
    status: 400,
    summary:
      'A label is empty or too long once normalised, or a `--label-map` entry is not `from=to`.',
  },
  CURSOR_INVALID: {
    status: 400,
    summary: 'A paging cursor was not issued by this server.',
  },
  DATASET_EMPTY: {
    status: 409,
    summary: 'A data set was asked for a split (and labels) that has no images.',
  },
  LABEL_NOT_FOUND: {
    status: 404,
    summary: 'A label was named (for training or filtering) that no image has ever had.',
  },
  BAD_REQUEST: {
    status: 400,
    summary:
      'The HTTP request is malformed: invalid JSON, a missing query, or an id that is not a positive integer.',
  },
  REQUEST_TOO_LARGE: {
    status: 413,
    summary: 'The JSON request body is over the 1 MB limit.',
  },
  BAD_USER_INPUT: {
    status: 400,
    summary:
      'An argument or variable has the wrong type or value for the field (GraphQL coercion).',
  },
  CSRF_PREFLIGHT_REQUIRED: {
    status: 400,
    summary:
      'A request with a simple content type (such as a multipart upload) lacks a CSRF preflight header.',
  },
  UNAUTHENTICATED: {
    status: 401,
    summary:
      'A mutation was sent without a bearer token, or with a token the server does not know.',
  },
  FORBIDDEN: {
    status: 403,
    summary:
      "The token's role may not do this (read < write < admin), or the server runs read-only.",
  },
  QUERY_PARSE_FAILED: {
    status: 400,
    summary: 'The GraphQL document is not valid syntax.',
  },
  QUERY_INVALID: {
    status: 400,
    summary:
      'The GraphQL document does not match the schema (unknown field, wrong argument, missing selection).',
  },
  QUERY_TOO_DEEP: {
    status: 400,
    summary: "The query nests selections deeper than the server's depth limit.",
  },
  QUERY_TOO_COMPLEX: {
    status: 400,
    summary:
      "The query's estimated cost (every field and alias, times page sizes) is over the server's limit, or it has too many aliases, tokens or directives.",
  },
  REQUEST_TIMEOUT: {
    status: 503,
    summary: "A query ran past the server's deadline (default 1 s) and was stopped.",
  },
  RATE_LIMITED: {
    status: 429,
    summary:
      'A client without a token sent more predictions than the server allows per minute, or more requests or predictions at once.',
  },
  WEBSOCKET_LIMIT: {
    status: 503,
    summary:
      'The server already holds as many WebSocket connections as it allows (default 1,000); the new one is closed 4503.',
  },
  UPLOAD_TOO_LARGE: {
    status: 413,
    summary:
      'An uploaded file is larger than the upload size cap (default 10 MB), or the request announces more bytes than any upload may be.',
  },
  UPLOAD_TOO_MANY_FILES: {
    status: 413,
    summary: 'A request carries more files than the server accepts at once (default 10).',
  },
  UPLOAD_INVALID: {
    status: 400,
    summary:
      'A multipart request does not follow the GraphQL multipart spec: no boundary, a malformed part header, a file part missing or misnamed.',
  },
  INTERNAL_SERVER_ERROR: {
    status: 500,
    summary:
      'The server failed in a way it did not expect; the details are in its log, not the response.',
  },
  PLUGIN_INVALID: {
    status: 500,
    summary:
      'A plugin lacks a name, a known kind or a required hook, or was written for another plugin API version.',
  },
  PLUGIN_NAME_CLASH: {
    status: 500,
    summary: 'Two plugins of one kind share a name.',
  },
  PLUGIN_NOT_FOUND: {
    status: 404,
    summary: 'No plugin of that kind has that name.',
  },
  TF_BACKEND_UNAVAILABLE: {
    status: 500,
    summary:
      "`@tensorflow/tfjs-node` did not load on native TensorFlow, in this process or in its JPEG decoder processes (an ingest's, or those decoding for a model whose input spec names the `tensorflow` decoder), or such a process died holding the image, or they died more than three times.",
  },
  EXPERIMENT_NAME_INVALID: {
    status: 400,
    summary: 'An experiment name is empty, over 255 characters, or contains control characters.',
  },
  EXPERIMENT_NOT_FOUND: {
    status: 404,
    summary: 'No experiment has that name or id.',
  },
  EXPERIMENT_EXISTS: {
    status: 409,
    summary: 'An experiment with that name already exists, possibly deleted.',
  },
  EXPERIMENT_NOT_ACTIVE: {
    status: 409,
    summary: 'The experiment is deleted, so no run can be created in it.',
  },
  RUN_NOT_FOUND: {
    status: 404,
    summary: 'No run has that id.',
  },
  RUN_NOT_ACTIVE: {
    status: 409,
    summary:
      'The run is finished, failed, killed or deleted, so it takes no more params, metrics or artifacts.',
  },
  RUN_DATA_INVALID: {
    status: 400,
    summary:
      'A param, metric or tag key or value is invalid: a bad key, a value over the length limit, a non-integer step, or an unknown run status.',
  },
  RUN_ARTIFACT_INVALID: {
    status: 400,
    summary:
      "An artifact to log does not exist, or its artifact path is absolute or leaves the run's artifact folder.",
  },
  PARAM_CONFLICT: {
    status: 409,
    summary:
      'A param was logged again with a different value; params are immutable once logged, as in MLflow.',
  },
  RUN_FILTER_INVALID: {
    status: 400,
    summary:
      'A run search filter or order-by is not valid: the message gives the position and what was expected.',
  },
  RUN_ARTIFACT_NOT_FOUND: {
    status: 404,
    summary:
      'The run has no such artifact: the confusion matrix is written when training ends, and only if an epoch completed.',
  },
  RUN_NOT_OWNED: {
    status: 409,
    summary:
      '`cancelRun` named a run this server did not start (the CLI or another server runs it), or a trial of a tuning run.',
  },
  JOB_LIMIT: {
    status: 429,
    summary:
      'The server already runs as many training/tuning/evaluation jobs or ingests as it allows (default 1: training saturates two cores).',
  },
  JOB_START_FAILED: {
    status: 500,
    summary:
      'A training, tuning or evaluation child process exited, or stayed silent, before it created its run or evaluation.',
  },
  INGEST_PATH_FORBIDDEN: {
    status: 403,
    summary:
      '`ingest` or `evaluateModel` named a path outside the ingest roots (`..` and symlinks resolved), or a CSV manifest, or no roots are set.',
  },
  MODEL_NAME_INVALID: {
    status: 400,
    summary: 'A registered model name is empty, too long, or contains `/` or `@`.',
  },
  MODEL_NOT_FOUND: {
    status: 404,
    summary: 'No registered model has that name.',
  },
  MODEL_EXISTS: {
    status: 409,
    summary: 'A registered model with that name already exists (creating or renaming).',
  },
  MODEL_IN_USE: {
    status: 409,
    summary:
      'The registered model has a champion or a Production version, so deleting it would stop serving.',
  },
  MODEL_VERSION_NOT_FOUND: {
    status: 404,
    summary: 'The model has no version with that number (never created, or deleted).',
  },
  MODEL_VERSION_NOT_READY: {
    status: 409,
    summary: 'The version is PENDING or FAILED, so it cannot be staged, aliased or promoted.',
  },
  MODEL_VERSION_IN_USE: {
    status: 409,
    summary:
      'The version is the champion (or aliased, or in Production), so it cannot be deleted, archived away or moved off Production.',
  },
  MODEL_ALIAS_INVALID: {
    status: 400,
    summary:
      'An alias is empty, over 255 characters, not letters/digits/`_`/`-`, reserved (`latest`), version-like (`3`, `v3`), or `champion` set without promoting.',
  },
  MODEL_ALIAS_NOT_FOUND: {
    status: 404,
    summary: 'The model has no alias with that name.',
  },
  MODEL_STAGE_INVALID: {
    status: 400,
    summary:
      'A stage is not None, Staging, Production or Archived, or `archiveExisting` was asked for a stage other than Staging or Production.',
  },
  MODEL_URI_INVALID: {
    status: 400,
    summary:
      'A model URI is not `models:/<name>/<version>`, `models:/<name>/<stage>`, `models:/<name>/latest` or `models:/<name>@<alias>`.',
  },
  MODEL_ARTIFACT_INVALID: {
    status: 400,
    summary:
      'A model artifact folder lacks a readable `menagerie.json` (plugin, labels, input spec, embedding layer), or its `model.json`/weights are missing, do not load, or disagree with the manifest.',
  },
  MODEL_BASE_UNAVAILABLE: {
    status: 500,
    summary:
      'A transfer-learning base model (`base_model`) could not be fetched or read, lacks the feature layer, or expects another input size.',
  },
  HP_INVALID: {
    status: 400,
    summary:
      'A hyperparameter has a bad range, step or default, is redeclared differently, or a value is outside it.',
  },
  TUNING_TOO_MANY_FAILURES: {
    status: 500,
    summary:
      'Tuning stopped because several trials in a row failed (`maxConsecutiveFailedTrials`).',
  },
  TUNING_STATE_INVALID: {
    status: 500,
    summary:
      'A saved tuning state is corrupt, was written by another tuner, or a result names a trial never proposed.',
  },
  MODEL_NOT_SERVING: {
    status: 503,
    summary:
      'The inference engine has no model: the registered model has no champion, or loading the champion failed.',
  },
  INFERENCE_WORKER_FAILED: {
    status: 503,
    summary:
      'The inference thread died (crashed or was ended) while it held this request; it is restarted with the models it served.',
  },
  EMBEDDING_JOB_RUNNING: {
    status: 409,
    summary: 'An embedding job for that model version is already running in another process.',
  },
  SIMILAR_QUERY_INVALID: {
    status: 400,
    summary:
      'A similar-images query names neither an embedding nor an image, or asks for k outside 1–100, or an embedding of the wrong length.',
  },
  EVALUATION_NOT_FOUND: {
    status: 404,
    summary:
      'No evaluation has that id, or it has no such worst error or confusion matrix (it is still running, or failed).',
  },
  EVALUATION_NO_IMAGES: {
    status: 409,
    summary:
      'No image of the evaluation data could be scored: none was readable, or none has a label the model knows.',
  },
  PREDICTION_NOT_FOUND: {
    status: 404,
    summary: 'Feedback names a prediction id this server never recorded.',
  },
  PREDICTION_UPLOAD_EXPIRED: {
    status: 410,
    summary:
      'Feedback names a prediction whose upload is no longer kept: past the retention limit, or served read-only.',
  },
} as const satisfies Readonly<Record<string, ErrorSpec>>;

export type ErrorCode = keyof typeof ERRORS;

export const ERROR_CODES: readonly ErrorCode[] = Object.freeze(Object.keys(ERRORS) as ErrorCode[]);

export function isErrorCode(value: unknown): value is ErrorCode {
  return typeof value === 'string' && Object.hasOwn(ERRORS, value);
}

/** An error whose `code` a caller can act on; the message says what was wrong. */
export class MenagerieError extends Error {
  readonly code: ErrorCode;

  constructor(code: ErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'MenagerieError';
    this.code = code;
  }
}

/** Longest client input an error message repeats; the rest is counted, not echoed. */
export const MAX_ECHOED_INPUT = 80;

/**
 * Client input as an error message may quote it: at most `max` characters, control
 * characters escaped, the length of what was left out said. Every message that echoes
 * input goes through this, so a 100,000-character label never comes back whole.
 *
 * ```ts
 * excerpt('x'.repeat(100_000)); // 'xxxxxxxx…xxx… (100,000 characters)', 80 x's shown
 * throw new MenagerieError('LABEL_INVALID', `label '${excerpt(raw)}' is too long`);
 * ```
 */
export function excerpt(input: unknown, max = MAX_ECHOED_INPUT): string {
  const text = typeof input === 'string' ? input : String(input);
  const shown = (text.length <= max ? text : text.slice(0, max)).replace(
    CONTROL_CHARACTER,
    (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`,
  );
  return text.length <= max
    ? shown
    : `${shown}… (${text.length.toLocaleString('en-US')} characters)`;
}

// eslint-disable-next-line no-control-regex
const CONTROL_CHARACTER = /[\u0000-\u001f\u007f]/g;

export function isMenagerieError(error: unknown, code?: ErrorCode): error is MenagerieError {
  return error instanceof MenagerieError && (code === undefined || error.code === code);
}
