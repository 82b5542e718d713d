import { unwrapResolverError } from '@apollo/server/errors';
import type { GraphQLFormattedError } from 'graphql';
import { GraphQLError } from 'graphql';
import { ERRORS, excerpt, isErrorCode, MenagerieError, type ErrorCode } from '../core/errors.js';
import { uploadError } from '../schema/upload.js';
import { recordFailure, requestStore } from './request-log.js';

/** Apollo's and type-graphql's own codes, renamed into our catalogue. */
const RENAMED: Readonly<Record<string, ErrorCode>> = {
  GRAPHQL_PARSE_FAILED: 'QUERY_PARSE_FAILED',
  GRAPHQL_VALIDATION_FAILED: 'QUERY_INVALID',
  UNAUTHORIZED: 'FORBIDDEN',
  OPERATION_RESOLUTION_FAILURE: 'BAD_REQUEST',
  PERSISTED_QUERY_NOT_FOUND: 'BAD_REQUEST',
  PERSISTED_QUERY_NOT_SUPPORTED: 'BAD_REQUEST',
};

/** Longest message a client gets; the rest of a longer one is counted, not sent. */
const MAX_MESSAGE = 500;

/**
 * Apollo's `formatError`: every error leaves with a catalogued `extensions.code` and the
 * request id; anything unexpected is masked as INTERNAL_SERVER_ERROR, its message and
 * stack kept for the log line only. Stack traces reach clients only in development.
 */
export function formatError(
  formatted: GraphQLFormattedError,
  error: unknown,
): GraphQLFormattedError {
  const state = requestStore.getStore();
  const original = unwrapResolverError(error);
  const dev = process.env.NODE_ENV === 'development';
  const known = classify(formatted, original);
  const code = known?.code ?? 'INTERNAL_SERVER_ERROR';
  if (!known) recordFailure(state, original);
  state?.errorCodes.push(code);
  const extensions: Record<string, unknown> = { code };
  if (state) extensions['requestId'] = state.id;
  if (dev && formatted.extensions?.['stacktrace'])
    extensions['stacktrace'] = formatted.extensions['stacktrace'];
  return {
    // Messages may quote what the client sent (graphql's coercion errors do, in full).
    message: excerpt(
      known?.message ?? `internal server error (request ${state?.id ?? 'unknown'})`,
      MAX_MESSAGE,
    ),
    ...(formatted.locations ? { locations: formatted.locations } : {}),
    ...(formatted.path ? { path: formatted.path } : {}),
    extensions,
  };
}

function classify(
  formatted: GraphQLFormattedError,
  original: unknown,
): { code: ErrorCode; message: string } | null {
  const ours = menagerieCause(original);
  if (ours) return { code: ours.code, message: ours.message };
  const status = (original as { status?: unknown } | null)?.status;
  if (!(original instanceof GraphQLError) && typeof status === 'number' && status < 500) {
    const coded = uploadError(original);
    return { code: coded.code, message: coded.message };
  }
  const given = formatted.extensions?.['code'];
  const code = typeof given === 'string' ? (RENAMED[given] ?? given) : undefined;
  // Apollo labels every uncoded error INTERNAL_SERVER_ERROR: those are the ones we mask.
  if (isErrorCode(code) && code !== 'INTERNAL_SERVER_ERROR')
    return { code, message: formatted.message };
  return null;
}

/**
 * The MenagerieError behind an error: Apollo wraps validation errors (our query limits
 * among them) in its own, with the code GRAPHQL_VALIDATION_FAILED, keeping ours as
 * `originalError`.
 */
function menagerieCause(error: unknown): MenagerieError | null {
  for (let e = error, depth = 0; e && depth < 4; depth++) {
    if (e instanceof MenagerieError) return e;
    e = e instanceof GraphQLError ? e.originalError : undefined;
  }
  return null;
}

/**
 * A MenagerieError as a GraphQLError carrying its code's status from the catalogue, for a
 * failure of the whole request (context, query limits). Not for resolvers: Apollo would
 * answer with that status too, and their errors keep GraphQL over HTTP's 200.
 */
export function toGraphQLError(error: MenagerieError): GraphQLError {
  return new GraphQLError(error.message, {
    originalError: error,
    extensions: { code: error.code, http: { status: ERRORS[error.code].status } },
  });
}
