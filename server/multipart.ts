import type { ApolloServerPlugin } from '@apollo/server';
import type { NextFunction, Request, RequestHandler, Response } from 'express';
import Upload from 'graphql-upload/Upload.mjs';
import { ERRORS, isErrorCode, MenagerieError, type ErrorCode } from '../core/errors.js';
import { uploadError } from '../schema/upload.js';
import { processMultipartRequest } from './multipart-request.js';
import { answerWhileDraining } from './early-answer.js';
import { sendGraphQLError } from './graphql-error-handler.js';
import { requestStore } from './request-log.js';

export interface MultipartLimits {
  /** Bytes per file (default 10 MB): a file reaching it is refused UPLOAD_TOO_LARGE. */
  maxFileSize: number;
  /** Files per request (default 10). */
  maxFiles: number;
  /**
   * A request announcing more bytes (Content-Length) is refused before any is read
   * (default maxFiles × maxFileSize + 1 MB for `operations` and `map`).
   */
  maxRequestSize: number;
}

/** Codes that mean the multipart body itself is broken or too big: the request failed whole. */
const UPLOAD_CODES: readonly ErrorCode[] = [
  'UPLOAD_INVALID',
  'UPLOAD_TOO_LARGE',
  'UPLOAD_TOO_MANY_FILES',
  'RATE_LIMITED',
];

const BOUNDARY = /;\s*boundary=(?:"[^"]{1,70}"|[^\s;"]{1,70})/i;

/**
 * GraphQL multipart requests (files held in memory: see processMultipartRequest), refused
 * early and never waited on: a request without a boundary, or announcing more bytes than
 * any upload may be, is answered at once without reading its body; a parser failure (a
 * malformed part header, a NUL in a file name, a 100 KB header) is UPLOAD_INVALID, wherever
 * it is found; and an answer that refuses the upload (over the cap, broken) is sent as soon
 * as it is known, closing the connection instead of reading the rest of the body. Files
 * mapped into arguments that are not uploads print as `<uploaded file>`, not as their
 * internals.
 */
export function multipartUploads(limits: MultipartLimits): RequestHandler {
  return (req: Request, res: Response, next: NextFunction) => {
    if (!req.is('multipart/form-data')) {
      next();
      return;
    }
    const state = requestStore.getStore();
    const send = res.send.bind(res);
    // Too large: answered at once and the connection closed. Any other refusal: answered
    // at once while a bounded rest of the body is read, so the client sees the answer.
    const refuse = (error: MenagerieError) => {
      res.send = send; // the deferred send below is for the GraphQL handler's answers
      if (error.code === 'UPLOAD_TOO_LARGE') {
        res.setHeader('connection', 'close');
        sendGraphQLError(res, error);
      } else {
        answerWhileDraining(req, res, () => sendGraphQLError(res, error));
      }
    };
    if (!BOUNDARY.test(req.headers['content-type'] ?? '')) {
      refuse(
        new MenagerieError(
          'UPLOAD_INVALID',
          'a multipart request needs a boundary parameter: content-type: multipart/form-data; boundary=…',
        ),
      );
      return;
    }
    const length = Number(req.headers['content-length']);
    if (Number.isFinite(length) && length > limits.maxRequestSize) {
      refuse(
        new MenagerieError(
          'UPLOAD_TOO_LARGE',
          `the request announces ${length} bytes; uploads are at most ${limits.maxFiles} files ` +
            `of ${limits.maxFileSize} bytes (${limits.maxRequestSize} bytes in all)`,
        ),
      );
      return;
    }

    // graphql-upload's rule: answer once the body is read, so a client still sending sees
    // its answer. Unless the answer refuses the upload: then now, and the rest is not read.
    res.send = (body?: unknown) => {
      res.send = send;
      const refused = state?.errorCodes.some((code) => UPLOAD_CODES.includes(code as ErrorCode));
      if (req.readableEnded || req.closed) return send(body);
      if (refused) {
        res.setHeader('connection', 'close');
        return send(body);
      }
      req.once('close', () => send(body));
      return res;
    };

    processMultipartRequest(req, res, limits)
      .then((operations) => {
        for (const upload of uploadsIn(operations)) describeUpload(upload);
        req.body = operations;
        next();
      })
      .catch((error: unknown) => refuse(uploadError(error)));
  };
}

/** Every Upload placed in the operations by the `map` field. */
function* uploadsIn(value: unknown, seen = new Set<unknown>()): Generator<Upload> {
  if (typeof value !== 'object' || value === null || seen.has(value)) return;
  seen.add(value);
  if (value instanceof Upload) {
    yield value;
    return;
  }
  for (const child of Object.values(value)) yield* uploadsIn(child, seen);
}

/**
 * An Upload as a resolver and an error message see it: its failures as coded upload
 * errors (busboy's own are plain Errors), and `<uploaded file>` when graphql prints it in
 * a coercion error (a file sent into a String argument).
 */
function describeUpload(upload: Upload): void {
  upload.promise = upload.promise.catch((error: unknown) => {
    throw uploadError(error);
  });
  upload.promise.catch(() => {});
  Object.defineProperty(upload, 'toJSON', { value: () => '<uploaded file>' });
}

/**
 * A refused upload fails the request as a whole, whichever resolver noticed it: the
 * response gets the code's status (400, 413, 429) as it does when the parser refuses it.
 */
export function uploadStatusPlugin(): ApolloServerPlugin {
  return {
    async requestDidStart() {
      return {
        async willSendResponse({ response }) {
          if (response.body.kind !== 'single') return;
          const code = response.body.singleResult.errors
            ?.map((e) => e.extensions?.['code'])
            .find((c) => isErrorCode(c) && UPLOAD_CODES.includes(c));
          if (isErrorCode(code)) response.http.status = ERRORS[code].status;
        },
      };
    },
  };
}
