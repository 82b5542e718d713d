import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { ERROR_CODES } from '../data/errors.js';
import { REPO_ROOT } from './helpers/fixtures.js';

describe('error catalogue', () => {
  it('documents every code, with a fix, and documents no code that does not exist', () => {
    const doc = fs.readFileSync(path.join(REPO_ROOT, 'docs/errors.md'), 'utf8');
    const rows = [...doc.matchAll(/^\| `([A-Z_]+)` \| (.+?) \| (.+?) \|$/gm)];
    const documented = rows.map((r) => r[1]);
    expect([...documented].sort()).toEqual([...ERROR_CODES].sort());
    for (const row of rows) expect(row[3]!.length, `${row[1]} needs a fix`).toBeGreaterThan(10);
  });
});
