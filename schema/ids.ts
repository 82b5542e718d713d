import { MenagerieError } from '../core/errors.js';

const POSITIVE_INTEGER = /^[1-9]\d{0,15}$/;

/**
 * Parses a row id sent by a client (GraphQL `ID` or a URL segment): a positive safe
 * integer written in plain digits, nothing else. Throws BAD_USER_INPUT.
 */
export function parseId(value: string | number, what = 'id'): number {
  const text = String(value);
  const id = Number(text);
  if (!POSITIVE_INTEGER.test(text) || !Number.isSafeInteger(id)) {
    throw new MenagerieError(
      'BAD_USER_INPUT',
      `${what} should be a positive integer, got '${text.slice(0, 40)}'`,
    );
  }
  return id;
}
