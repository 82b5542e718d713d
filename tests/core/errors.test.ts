import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { ERROR_CODES } from '../../core/errors.js';
import { REPO_ROOT } from '../helpers/fixtures.js';

describe('error catalogue', () => {
  it('documents every code, with a fix, and documents no code that does not exist', () => {
    const doc = fs.readFileSync(path.join(REPO_ROOT, 'docs/errors.md'), 'utf8');
    // Cells split on '|', so the check holds however the table is padded.
    const rows = doc
      .split('\n')
      .map((line) => line.split('|').map((cell) => cell.trim()))
      .filter((cells) => /^`[A-Z_]+`$/.test(cells[1] ?? ''));
    const documented = rows.map((cells) => cells[1]!.slice(1, -1));
    expect([...documented].sort()).toEqual([...ERROR_CODES].sort());
    for (const cells of rows)
      expect(cells[3]?.length ?? 0, `${cells[1]} needs a fix`).toBeGreaterThan(10);
  });
});
