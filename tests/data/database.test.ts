import path from 'node:path';
import { sql } from 'kysely';
import { afterEach, describe, expect, it } from 'vitest';
import { openDatabase, type OpenDatabase } from '../../data/database.js';
import { migrations } from '../../data/migrations/index.js';
import { withSavepoint } from '../../data/savepoint.js';
import { isUniqueViolation } from '../../data/sql-errors.js';
import { forEachDatabase, SERVICE_START_TIMEOUT } from '../helpers/backends.js';
import { tempDir } from '../helpers/fixtures.js';

const latest = Object.keys(migrations).at(-1);

forEachDatabase((backend) => {
  const opened: OpenDatabase[] = [];
  afterEach(async () => {
    await Promise.all(opened.splice(0).map((d) => d.close()));
  });
  const cleanups: (() => void)[] = [];
  afterEach(() => cleanups.splice(0).forEach((c) => c()));
  /** A database location no one has opened yet: a new SQLite file, or a new schema. */
  const freshLocation = async (): Promise<string> => {
    if (backend.name === 'postgres')
      return `${(await backend.location())!.replace(/\?schema=.*/, '')}?schema=fresh_${process.pid}_${Date.now()}`;
    const { dir, remove } = tempDir();
    cleanups.push(remove);
    return path.join(dir, 'nested', 'menagerie.db');
  };
  const open = async (location: string, options?: Parameters<typeof openDatabase>[1]) => {
    const database = await openDatabase(location, options);
    opened.push(database);
    return database;
  };
  const dropSchema = async (database: OpenDatabase) => {
    if (database.backend === 'postgres')
      await database.pool.query(`drop schema ${database.schema} cascade`);
  };

  describe('openDatabase', () => {
    it(
      'migrates an empty database to the newest schema, and a second open changes nothing',
      async () => {
        const location = await freshLocation();
        const first = await open(location);
        expect(first.schemaVersion).toBe(latest);
        const tables = (await first.db.introspection.getTables()).map((t) => t.name);
        expect(tables).toEqual(
          expect.arrayContaining(['images', 'labels', 'registered_models', 'stage_transitions']),
        );
        const second = await open(location);
        expect(second.schemaVersion).toBe(latest);
        const applied = await sql<{
          n: number;
        }>`select count(*) as n from kysely_migration`.execute(second.db);
        expect(applied.rows[0]!.n).toBe(Object.keys(migrations).length);
        expect(second.engine.backend).toBe(backend.name);
        expect(second.engine.version).toMatch(/^\d+\.\d+/);
        expect(second.engine.vectors).toMatch(
          backend.name === 'sqlite' ? /sqlite-vec/ : /pgvector 0\.8/,
        );
        await dropSchema(second);
      },
      SERVICE_START_TIMEOUT,
    );

    it('migrates once when several replicas open a new database at the same moment', async () => {
      const location = await freshLocation();
      const replicas = await Promise.all(
        Array.from({ length: 4 }, () => open(location, { maxConnections: 2 })),
      );
      expect(replicas.map((r) => r.schemaVersion)).toEqual(Array(4).fill(latest));
      const applied = await sql<{ name: string }>`select name from kysely_migration`.execute(
        replicas[0]!.db,
      );
      expect(applied.rows.map((r) => r.name).sort()).toEqual(Object.keys(migrations).sort());
      await dropSchema(replicas[0]!);
    });

    it('refuses a schema newer than the code, with a code and both versions named', async () => {
      const location = await freshLocation();
      const database = await open(location);
      await sql`insert into kysely_migration (name, timestamp) values ('9999-from-the-future', 'x')`.execute(
        database.db,
      );
      await expect(openDatabase(location)).rejects.toMatchObject({
        code: 'DB_SCHEMA_TOO_NEW',
        message: expect.stringContaining('9999-from-the-future'),
      });
      await dropSchema(database);
    });

    it('does not migrate when asked not to', async () => {
      const database = await open(await freshLocation(), { migrate: false });
      expect(database.schemaVersion).toBe('none');
      await dropSchema(database);
    });
  });

  describe('the same semantics on both', () => {
    it('stores Date.now() and reads it back as a number, counts too', async () => {
      const database = await open(await freshLocation());
      const now = Date.now();
      await database.db.insertInto('labels').values({ name: 'cat', created_at: now }).execute();
      const row = await database.db.selectFrom('labels').selectAll().executeTakeFirstOrThrow();
      expect(row).toEqual({ id: 1, name: 'cat', created_at: now });
      const count = await database.db
        .selectFrom('labels')
        .select((eb) => eb.fn.countAll<number>().as('n'))
        .executeTakeFirstOrThrow();
      expect(count.n).toBe(1);
      await dropSchema(database);
    });

    it('reports a unique violation the same way, and a savepoint keeps the transaction', async () => {
      const database = await backend.open();
      opened.push(database);
      await database.db.insertInto('labels').values({ name: 'cat', created_at: 1 }).execute();
      const inserted = await database.db.transaction().execute(async (trx) => {
        const taken = await withSavepoint(trx, (t) =>
          t.insertInto('labels').values({ name: 'cat', created_at: 2 }).execute(),
        ).then(
          () => false,
          (error: unknown) => isUniqueViolation(error),
        );
        expect(taken).toBe(true);
        // PostgreSQL would refuse this statement without the savepoint's rollback.
        await trx.insertInto('labels').values({ name: 'dog', created_at: 3 }).execute();
        return trx.selectFrom('labels').select('name').orderBy('name').execute();
      });
      expect(inserted.map((r) => r.name)).toEqual(['cat', 'dog']);
    });

    it('refuses a foreign key that points nowhere', async () => {
      const database = await backend.open();
      opened.push(database);
      await expect(
        database.db
          .insertInto('images')
          .values({
            sha256: 'x',
            uri: 'blob:x',
            label_id: 999,
            split: 'train',
            width: 1,
            height: 1,
            format: 'jpeg',
            bytes: 1,
            source_path: null,
            added_at: 0,
          })
          .execute(),
      ).rejects.toThrow(/foreign key/i);
    });
  });
});

describe('openDatabase on SQLite', () => {
  it('runs with WAL, foreign keys and a busy timeout', async () => {
    const { dir, remove } = tempDir();
    const database = await openDatabase(path.join(dir, 'menagerie.db'));
    if (database.backend !== 'sqlite') throw new Error('expected SQLite');
    expect(database.sqlite.pragma('journal_mode', { simple: true })).toBe('wal');
    expect(database.sqlite.pragma('foreign_keys', { simple: true })).toBe(1);
    expect(database.sqlite.pragma('busy_timeout', { simple: true })).toBe(5000);
    await database.close();
    remove();
  });
});
