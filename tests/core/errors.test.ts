import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { ERROR_CODES, ERRORS, isErrorCode, type ErrorCode } from '../../core/errors.js';
import { REPO_ROOT } from '../helpers/fixtures.js';

/** docs/errors.md's rows: `| code | status | what happened | how to fix it |`. */
function documentedRows() {
  const doc = fs.readFileSync(path.join(REPO_ROOT, 'docs/errors.md'), 'utf8');
  // Cells split on '|', so the check holds however the table is padded.
  return doc
    .split('\n')
    .map((line) => line.split('|').map((cell) => cell.trim()))
    .filter((cells) => /^`[A-Z_]+`$/.test(cells[1] ?? ''))
    .map(([, code, status, summary, fix]) => ({
      code: code!.slice(1, -1),
      status: status ?? '',
      summary: summary ?? '',
      fix: fix ?? '',
    }));
}

describe('error catalogue', () => {
  it('documents every code, with a fix, and documents no code that does not exist', () => {
    const rows = documentedRows();
    expect(rows.map((row) => row.code).sort()).toEqual([...ERROR_CODES].sort());
    for (const row of rows) expect(row.fix.length, `${row.code} needs a fix`).toBeGreaterThan(10);
  });

  it("documents each code's status and meaning as the table has them", () => {
    for (const row of documentedRows()) {
      const spec = ERRORS[row.code as ErrorCode];
      expect(row.status, `${row.code}'s status`).toBe(String(spec.status));
      expect(row.summary, `${row.code}'s summary`).toBe(spec.summary);
    }
  });

  it('gives every code a one-line summary and an error status', () => {
    for (const code of ERROR_CODES) {
      const { status, summary } = ERRORS[code];
      expect(status >= 400 && status < 600, `${code}: ${status}`).toBe(true);
      expect(summary, code).toMatch(/^[A-Z`].{10,}\.$/);
      expect(summary, code).not.toMatch(/\n/);
    }
  });

  it('knows its own codes and nothing else', () => {
    expect(ERROR_CODES.every(isErrorCode)).toBe(true);
    for (const other of ['NOT_A_CODE', 'toString', '__proto__', 'constructor', 42, null])
      expect(isErrorCode(other), String(other)).toBe(false);
  });
});
