import type { Response } from 'express';
import { ERRORS, isMenagerieError, type ErrorCode } from '../core/errors.js';
import { recordFailure, requestStore } from './request-log.js';

/**
 * Answers a plain HTTP route's error (`/images/…`, `/runs/…/artifacts/…`) as
 * `{ error: { code, message, requestId } }` with the code's status from the catalogue.
 * Anything uncoded is INTERNAL_SERVER_ERROR (500): its message goes to the log line only.
 */
export function sendRouteError(res: Response, error: unknown): void {
  const state = requestStore.getStore();
  const coded = isMenagerieError(error) && error.code !== 'INTERNAL_SERVER_ERROR';
  const code: ErrorCode = coded ? error.code : 'INTERNAL_SERVER_ERROR';
  if (!coded) recordFailure(state, error);
  state?.errorCodes.push(code);
  // Headers set for the bytes that were to be sent must not describe the error.
  res.removeHeader('etag');
  res.removeHeader('cache-control');
  res.status(ERRORS[code].status).json({
    error: {
      code,
      message: coded ? error.message : `internal server error (request ${state?.id ?? 'unknown'})`,
      ...(state ? { requestId: state.id } : {}),
    },
  });
}
