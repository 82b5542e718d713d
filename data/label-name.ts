import { excerpt, MenagerieError } from '../core/errors.js';

const MAX_LENGTH = 64;

/**
 * Normalises a folder or manifest label to its stored name: lowercase, words joined by
 * '-', only a-z, 0-9 and '-'. `'Wild Animals'` → `'wild-animals'`, `'CAT'` → `'cat'`.
 * Throws LABEL_INVALID when nothing usable is left.
 */
export function normaliseLabel(raw: string): string {
  const name = raw
    .normalize('NFKD')
    .replace(/[\u0300-\u036f]/g, '')
    .toLowerCase()
    .replace(/[^a-z0-9]+/g, '-')
    .replace(/^-+|-+$/g, '');
  if (name.length === 0 || name.length > MAX_LENGTH) {
    throw new MenagerieError(
      'LABEL_INVALID',
      `label '${excerpt(raw)}' should have 1 to ${MAX_LENGTH} letters or digits once normalised, ` +
        `got '${excerpt(name)}'`,
    );
  }
  return name;
}

/**
 * Parses `--label-map` entries (`wild=wildlife`) into a map of normalised names.
 * Throws LABEL_INVALID on an entry without '='.
 */
export function parseLabelMap(entries: readonly string[]): Map<string, string> {
  const map = new Map<string, string>();
  for (const entry of entries) {
    const eq = entry.indexOf('=');
    if (eq <= 0 || eq === entry.length - 1) {
      throw new MenagerieError(
        'LABEL_INVALID',
        `label map entry should be from=to, got '${excerpt(entry)}'`,
      );
    }
    map.set(normaliseLabel(entry.slice(0, eq)), normaliseLabel(entry.slice(eq + 1)));
  }
  return map;
}
