import fs from 'node:fs';
import path from 'node:path';
import SqliteDatabase from 'better-sqlite3';
import {
  Kysely,
  Migrator,
  SqliteDialect,
  type MigrationProvider,
  type MigrationResultSet,
} from 'kysely';
import * as sqliteVec from 'sqlite-vec';
import { MenagerieError } from '../core/errors.js';
import { migrations } from './migrations/index.js';
import type { Database } from './tables.js';

/** An open database: typed queries through `db`, the raw handle for pragmas and hot loops. */
export interface OpenDatabase {
  readonly db: Kysely<Database>;
  readonly sqlite: SqliteDatabase.Database;
  readonly file: string;
  /** Name of the newest migration applied. */
  readonly schemaVersion: string;
  close(): Promise<void>;
}

export interface OpenDatabaseOptions {
  /** Apply pending migrations (default true). A schema newer than the code is always refused. */
  migrate?: boolean;
  /** Milliseconds a writer waits for another's lock before SQLITE_BUSY (default 5000). */
  busyTimeoutMs?: number;
}

const provider: MigrationProvider = { getMigrations: async () => migrations };

/**
 * Opens (creating if needed) a Menagerie database file with WAL, foreign keys and a busy
 * timeout, and brings its schema up to date.
 *
 * ```ts
 * import { openDatabase } from './data/database.js';
 * const { db, close } = await openDatabase('.menagerie/menagerie.db');
 * const labels = await db.selectFrom('labels').selectAll().execute();
 * await close();
 * ```
 */
export async function openDatabase(
  file: string,
  options: OpenDatabaseOptions = {},
): Promise<OpenDatabase> {
  if (file !== ':memory:') fs.mkdirSync(path.dirname(path.resolve(file)), { recursive: true });
  const sqlite = new SqliteDatabase(file);
  sqlite.pragma('journal_mode = WAL');
  // NORMAL is durable across a killed process in WAL mode; only power loss can drop the last commits.
  sqlite.pragma('synchronous = NORMAL');
  sqlite.pragma('foreign_keys = ON');
  sqlite.pragma(`busy_timeout = ${options.busyTimeoutMs ?? 5000}`);
  // vec0 virtual tables hold image embeddings for similarity search (serving/embedding-store.ts).
  sqliteVec.load(sqlite);
  const db = new Kysely<Database>({ dialect: new SqliteDialect({ database: sqlite }) });
  try {
    const schemaVersion = await prepareSchema(db, sqlite, options.migrate ?? true);
    return { db, sqlite, file, schemaVersion, close: () => db.destroy() };
  } catch (error) {
    await db.destroy();
    throw error;
  }
}

async function prepareSchema(
  db: Kysely<Database>,
  sqlite: SqliteDatabase.Database,
  migrate: boolean,
): Promise<string> {
  const migrator = new Migrator({ db, provider });
  const known = new Set(Object.keys(migrations));
  const applied = (await migrator.getMigrations()).filter((m) => m.executedAt);
  const unknown = await appliedMigrationNames(db).then((names) =>
    names.filter((n) => !known.has(n)),
  );
  if (unknown.length > 0) {
    throw new MenagerieError(
      'DB_SCHEMA_TOO_NEW',
      `the database has schema ${unknown.at(-1)}, newer than this Menagerie knows ` +
        `(${[...known].at(-1)}); upgrade Menagerie or open another --data-dir`,
    );
  }
  if (migrate && applied.length < known.size) {
    const { error, results } = await migrateExclusively(sqlite, () => migrator.migrateToLatest());
    if (error) {
      const failed = results?.find((r) => r.status === 'Error')?.migrationName ?? 'unknown';
      throw new MenagerieError(
        'DB_MIGRATION_FAILED',
        `migration ${failed} failed: ${String(error)}`,
        {
          cause: error,
        },
      );
    }
    return [...known].at(-1) ?? 'none';
  }
  return applied.at(-1)?.name ?? 'none';
}

async function appliedMigrationNames(db: Kysely<Database>): Promise<string[]> {
  const tables = await db.introspection.getTables({ withInternalKyselyTables: true });
  if (!tables.some((t) => t.name === 'kysely_migration')) return [];
  // The migration table is kysely's, outside the typed Database.
  const rows = await (db as unknown as Kysely<{ kysely_migration: { name: string } }>)
    .selectFrom('kysely_migration')
    .select('name')
    .orderBy('name')
    .execute();
  return rows.map((r) => r.name);
}

/**
 * Runs the migrator inside one `BEGIN IMMEDIATE` transaction. kysely takes no lock on SQLite
 * and runs its migrations one by one, so two processes opening a new database at once (a
 * server and a CLI command) both found the same migrations pending and the second failed on
 * "table already exists". Holding the write lock from before the migrator reads what is
 * applied makes the second wait (busy timeout), then find nothing to do; and a failed
 * migration now leaves the schema as it was.
 */
async function migrateExclusively(
  sqlite: SqliteDatabase.Database,
  migrate: () => Promise<MigrationResultSet>,
): Promise<MigrationResultSet> {
  sqlite.exec('BEGIN IMMEDIATE');
  let outcome: MigrationResultSet;
  try {
    outcome = await migrate();
  } catch (error) {
    sqlite.exec('ROLLBACK');
    throw error;
  }
  sqlite.exec(outcome.error ? 'ROLLBACK' : 'COMMIT');
  return outcome;
}
