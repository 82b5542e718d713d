import type { NextFunction, Request, Response } from 'express';
import { MenagerieError } from '../core/errors.js';
import { sendGraphQLError } from './graphql-error-handler.js';

/** Content types a browser sends cross-site without a CORS preflight. */
const SIMPLE_CONTENT_TYPES = [
  'application/x-www-form-urlencoded',
  'multipart/form-data',
  'text/plain',
];

/**
 * Apollo's CSRF rule, applied before the multipart parser so a forged upload is refused
 * before any of its bytes are buffered: a request a browser sends without a preflight
 * (a simple content type, or none) must carry `apollo-require-preflight` or
 * `x-apollo-operation-name`.
 */
export function requirePreflight(req: Request, res: Response, next: NextFunction): void {
  const header = (name: string) => {
    const value = req.headers[name];
    return typeof value === 'string' && value.length > 0;
  };
  const type = req.headers['content-type']?.split(';')[0]?.trim().toLowerCase();
  const preflighted =
    header('apollo-require-preflight') ||
    header('x-apollo-operation-name') ||
    (type !== undefined && !SIMPLE_CONTENT_TYPES.includes(type));
  if (preflighted) {
    next();
    return;
  }
  sendGraphQLError(
    res,
    new MenagerieError(
      'CSRF_PREFLIGHT_REQUIRED',
      'this request could be a cross-site request forgery: send the header ' +
        "'apollo-require-preflight: true' (uploads, GET queries) or a JSON content type",
    ),
  );
}
