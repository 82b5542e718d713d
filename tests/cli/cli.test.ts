import { sql } from 'kysely';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { openDatabase } from '../../data/database.js';
import { runCli } from '../helpers/cli.js';
import { AFHQ_MINI, tempDir } from '../helpers/fixtures.js';

describe('menagerie CLI', () => {
  const { dir, remove } = tempDir('menagerie-cli-');
  afterAll(remove);

  it('doctor reports the native backend, the database and the store, and exits 0', () => {
    const result = runCli(['doctor', '--data-dir', path.join(dir, 'ok')]);
    expect(result.code, result.stdout + result.stderr).toBe(0);
    expect(result.stdout).toMatch(/ok\s+tensorflow\s+backend tensorflow, TensorFlow 2\.\d+/);
    expect(result.stdout).toMatch(
      /ok\s+database\s+SQLite 3\.\d+\.\d+, sqlite-vec v[\d.]+: .*menagerie\.db, schema \d{4}-[a-z-]+/,
    );
    expect(result.stdout).toMatch(/ok\s+blob store/);
    expect(result.stdout).toMatch(/storage menagerie:local-fs/);
  });

  it('doctor exits 1 and names the problem when the schema is newer than the code', async () => {
    const dataDir = path.join(dir, 'future');
    const database = await openDatabase(path.join(dataDir, 'menagerie.db'));
    await sql`insert into kysely_migration (name, timestamp) values ('9999-future', 'x')`.execute(
      database.db,
    );
    await database.close();
    const result = runCli(['doctor'], { MENAGERIE_DATA_DIR: dataDir });
    expect(result.code).toBe(1);
    expect(result.stdout).toMatch(/FAIL\s+database\s+the database has schema 9999-future/);
  });

  it('ingest prints a summary with counts per label × split, or the full report as JSON', () => {
    const dataDir = path.join(dir, 'ingest');
    const text = runCli(['ingest', AFHQ_MINI, '--data-dir', dataDir]);
    expect(text.code, text.stderr).toBe(0);
    expect(text.stdout).toMatch(/added\s+85/);
    expect(text.stdout).toMatch(/^total\s+\d+\s+\d+\s+85$/m);
    const json = runCli(['ingest', AFHQ_MINI, '--data-dir', dataDir, '--json']);
    const report = JSON.parse(json.stdout);
    expect(report).toMatchObject({ added: 0, unchanged: 85, layout: 'label' });
  });

  it.each([
    [['ingest', '/no/such/dir'], /error INGEST_SOURCE_NOT_FOUND: no such file or folder/],
    [['ingest', AFHQ_MINI, '--val-fraction', '2'], /expected a number in \[0, 1\), got '2'/],
    [
      ['ingest', AFHQ_MINI, '--label-map', 'cat'],
      /error LABEL_INVALID: label map entry should be from=to/,
    ],
    [['frobnicate'], /unknown command 'frobnicate'/],
    [
      ['serve', '--token', 'admin:short'],
      /^error CONFIG_INVALID: --token admin:…: a token needs 8/m,
    ],
    [['serve', '--token', 'short'], /^error CONFIG_INVALID: --token …: a token needs 8/m],
    [['serve', '--port', '99999'], /expected a port 0–65535, got '99999'/],
    [['train', '--hp', 'no-equals-sign'], /^error CONFIG_INVALID: .*expected name=value/m],
    [['tune', '--fix', 'no-equals-sign'], /^error CONFIG_INVALID: .*expected name=value/m],
  ])('%j fails with a clear message', (args, message) => {
    const result = runCli([...args, '--data-dir', path.join(dir, 'errors')]);
    expect(result.code).not.toBe(0);
    expect(result.stderr).toMatch(message);
    // The token itself is never echoed.
    expect(result.stderr).not.toMatch(/short/);
  });
});
