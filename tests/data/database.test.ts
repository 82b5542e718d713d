import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { openDatabase } from '../../data/database.js';
import { migrations } from '../../data/migrations/index.js';
import { tempDir } from '../helpers/fixtures.js';

describe('openDatabase', () => {
  const cleanups: (() => void)[] = [];
  afterEach(() => cleanups.splice(0).forEach((c) => c()));
  const dbFile = () => {
    const { dir, remove } = tempDir();
    cleanups.push(remove);
    return path.join(dir, 'nested', 'menagerie.db');
  };

  it('migrates an empty file to the newest schema, and a second open changes nothing', async () => {
    const file = dbFile();
    const first = await openDatabase(file);
    const latest = Object.keys(migrations).at(-1);
    expect(first.schemaVersion).toBe(latest);
    const tables = (await first.db.introspection.getTables()).map((t) => t.name).sort();
    // Later migrations add tables; the first issue's and the registry's must be there.
    expect(tables).toEqual(
      expect.arrayContaining(['images', 'labels', 'registered_models', 'stage_transitions']),
    );
    await first.close();

    const second = await openDatabase(file);
    expect(second.schemaVersion).toBe(latest);
    const applied = second.sqlite.prepare('select count(*) as n from kysely_migration').get() as {
      n: number;
    };
    expect(applied.n).toBe(Object.keys(migrations).length);
    await second.close();
  });

  it('runs with WAL, foreign keys and a busy timeout', async () => {
    const database = await openDatabase(dbFile());
    expect(database.sqlite.pragma('journal_mode', { simple: true })).toBe('wal');
    expect(database.sqlite.pragma('foreign_keys', { simple: true })).toBe(1);
    expect(database.sqlite.pragma('busy_timeout', { simple: true })).toBe(5000);
    // A foreign key that points nowhere is refused.
    expect(() =>
      database.sqlite
        .prepare(
          `insert into images (sha256, uri, label_id, split, width, height, format, bytes, added_at)
           values ('x', 'blob:x', 999, 'train', 1, 1, 'jpeg', 1, 0)`,
        )
        .run(),
    ).toThrow(/FOREIGN KEY/);
    await database.close();
  });

  it('refuses a schema newer than the code, with a code and both versions named', async () => {
    const file = dbFile();
    const database = await openDatabase(file);
    database.sqlite
      .prepare(
        "insert into kysely_migration (name, timestamp) values ('9999-from-the-future', 'x')",
      )
      .run();
    await database.close();
    await expect(openDatabase(file)).rejects.toMatchObject({
      code: 'DB_SCHEMA_TOO_NEW',
      message: expect.stringContaining('9999-from-the-future'),
    });
  });

  it('does not migrate when asked not to', async () => {
    const database = await openDatabase(dbFile(), { migrate: false });
    expect(database.schemaVersion).toBe('none');
    await database.close();
  });
});
