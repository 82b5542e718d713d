import type { NextFunction, Request, Response } from 'express';
import { ERRORS, MenagerieError } from '../core/errors.js';
import { uploadError } from '../schema/upload.js';
import { recordFailure, requestStore } from './request-log.js';

/**
 * Express error middleware for `/graphql`: errors raised before Apollo runs, by the JSON
 * body parser or the multipart (upload) parser, answered as GraphQL errors.
 */
export function graphqlErrorHandler(
  error: unknown,
  _req: Request,
  res: Response,
  next: NextFunction,
): void {
  if (res.headersSent) {
    next(error);
    return;
  }
  const parserType = (error as { type?: unknown } | null)?.type;
  const status = (error as { status?: unknown } | null)?.status;
  if (parserType === 'entity.parse.failed') {
    sendGraphQLError(res, new MenagerieError('BAD_REQUEST', 'the request body is not valid JSON'));
  } else if (parserType === 'entity.too.large') {
    sendGraphQLError(res, new MenagerieError('REQUEST_TOO_LARGE', 'the request body is over 1 MB'));
  } else if (typeof status === 'number' && status >= 400 && status < 500) {
    // graphql-upload's http-errors: too many files, a file over the cap, a broken multipart.
    sendGraphQLError(res, uploadError(error));
  } else {
    const state = requestStore.getStore();
    recordFailure(state, error);
    sendGraphQLError(
      res,
      new MenagerieError(
        'INTERNAL_SERVER_ERROR',
        `internal server error (request ${state?.id ?? 'unknown'})`,
      ),
    );
  }
}

/**
 * Answers a GraphQL request that failed as a whole, before Apollo, with the code's status
 * from the catalogue and the body Apollo gives its own: `{ errors: [{ message, extensions }] }`.
 */
export function sendGraphQLError(res: Response, error: MenagerieError): void {
  const state = requestStore.getStore();
  state?.errorCodes.push(error.code);
  res.status(ERRORS[error.code].status).json({
    errors: [
      {
        message: error.message,
        extensions: { code: error.code, ...(state ? { requestId: state.id } : {}) },
      },
    ],
  });
}
