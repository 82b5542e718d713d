import { excerpt, MenagerieError } from '../core/errors.js';

// Limits as MLflow's: keys 250 characters, param values 6000, tag values 8000.
export const MAX_KEY = 250;
export const MAX_PARAM_VALUE = 6000;
export const MAX_TAG_VALUE = 8000;
const MAX_NAME = 255;
const KEY_PATTERN = /^[\p{L}\p{N}_\-. /:]+$/u;

export function invalid(message: string): never {
  throw new MenagerieError('RUN_DATA_INVALID', message);
}

export function checkKey(kind: string, key: string): void {
  if (typeof key !== 'string' || key.length === 0 || key.length > MAX_KEY)
    invalid(
      `${kind} key should be 1–${MAX_KEY} characters, got ${JSON.stringify(key)?.slice(0, 60)}`,
    );
  if (!KEY_PATTERN.test(key) || key.split('/').includes('..') || key.startsWith('/'))
    invalid(
      `${kind} key '${excerpt(key)}' should hold only letters, digits, '_', '-', '.', '/', ':' and spaces`,
    );
}

export function checkValue(kind: string, key: string, value: string, max: number): void {
  if (value.length > max)
    invalid(`${kind} '${excerpt(key)}' is ${value.length} characters; the limit is ${max}`);
}

/** An experiment name, trimmed. */
export function checkName(name: string): string {
  const trimmed = typeof name === 'string' ? name.trim() : '';
  // eslint-disable-next-line no-control-regex
  if (trimmed.length === 0 || trimmed.length > MAX_NAME || /[\u0000-\u001f\u007f]/.test(trimmed))
    throw new MenagerieError(
      'EXPERIMENT_NAME_INVALID',
      `experiment name should be 1–${MAX_NAME} printable characters, got ${JSON.stringify(name)?.slice(0, 80)}`,
    );
  return trimmed;
}

export function checkStep(step: number): void {
  if (!Number.isSafeInteger(step)) invalid(`metric step should be a whole number, got ${step}`);
}

export function checkTimestamp(timestamp: number): void {
  if (!Number.isSafeInteger(timestamp))
    invalid(`timestamp should be whole milliseconds, got ${timestamp}`);
}
