import fs from 'node:fs';
import path from 'node:path';
import SqliteDatabase from 'better-sqlite3';
import {
  Kysely,
  Migrator,
  PostgresDialect,
  sql,
  SqliteDialect,
  type MigrationProvider,
} from 'kysely';
import pg from 'pg';
import * as sqliteVec from 'sqlite-vec';
import { MenagerieError } from '../core/errors.js';
import { migrations } from './migrations/index.js';
import type { Database } from './tables.js';

/** What `doctor` reports: the backend and its version. */
export interface DatabaseEngine {
  backend: 'sqlite' | 'postgres';
  /** `3.45.1` (SQLite), `15.10` (PostgreSQL). */
  version: string;
  /** The vector extension and its version: `sqlite-vec v0.1.9`, `pgvector 0.8.0`; null when absent. */
  vectors: string | null;
}

interface OpenDatabaseBase {
  /** Typed queries; the same code runs on both backends. */
  readonly db: Kysely<Database>;
  /** The file, or the URL without its password: safe to print. */
  readonly location: string;
  /** Name of the newest migration applied. */
  readonly schemaVersion: string;
  readonly engine: DatabaseEngine;
  close(): Promise<void>;
}

/** A SQLite file (or `:memory:`): the embedded default. */
export interface SqliteOpenDatabase extends OpenDatabaseBase {
  readonly backend: 'sqlite';
  /** The raw handle, for pragmas, sqlite-vec and hot loops. */
  readonly sqlite: SqliteDatabase.Database;
  readonly file: string;
}

/** A PostgreSQL database shared by replicas and workers. */
export interface PostgresOpenDatabase extends OpenDatabaseBase {
  readonly backend: 'postgres';
  readonly pool: pg.Pool;
  /** The schema the tables live in (`public`, or the URL's `?schema=`). */
  readonly schema: string;
}

/** An open database: switch on `backend` for what only one of them has. */
export type OpenDatabase = SqliteOpenDatabase | PostgresOpenDatabase;

export interface OpenDatabaseOptions {
  /** Apply pending migrations (default true). A schema newer than the code is always refused. */
  migrate?: boolean;
  /** Milliseconds a writer waits for another's lock before SQLITE_BUSY (default 5000). */
  busyTimeoutMs?: number;
  /** PostgreSQL connections at most in this process's pool (default 10). */
  maxConnections?: number;
}

const provider: MigrationProvider = { getMigrations: async () => migrations };

/** True for a `postgres://` or `postgresql://` URL; anything else is a SQLite file path. */
export function isPostgresUrl(location: string): boolean {
  return /^postgres(ql)?:\/\//i.test(location);
}

/**
 * Opens a Menagerie database and brings its schema up to date: a SQLite file path (created
 * if needed, with WAL, foreign keys and a busy timeout) or a `postgres://` URL. On
 * PostgreSQL, `?schema=NAME` keeps the tables in that schema (created if needed), so
 * several workspaces can share one database; migrations run under an advisory lock, so
 * any number of replicas may start at once.
 *
 * ```ts
 * import { openDatabase } from './data/database.js';
 * const { db, close } = await openDatabase('.menagerie/menagerie.db');
 * // or: await openDatabase('postgres://menagerie@db.internal:5432/menagerie')
 * const labels = await db.selectFrom('labels').selectAll().execute();
 * await close();
 * ```
 */
export async function openDatabase(
  location: string,
  options: OpenDatabaseOptions = {},
): Promise<OpenDatabase> {
  return isPostgresUrl(location) ? openPostgres(location, options) : openSqlite(location, options);
}

async function openSqlite(file: string, options: OpenDatabaseOptions): Promise<SqliteOpenDatabase> {
  if (file !== ':memory:') fs.mkdirSync(path.dirname(path.resolve(file)), { recursive: true });
  const sqlite = new SqliteDatabase(file);
  sqlite.pragma('journal_mode = WAL');
  // NORMAL is durable across a killed process in WAL mode; only power loss can drop the last commits.
  sqlite.pragma('synchronous = NORMAL');
  sqlite.pragma('foreign_keys = ON');
  sqlite.pragma(`busy_timeout = ${options.busyTimeoutMs ?? 5000}`);
  // vec0 virtual tables hold image embeddings for similarity search (serving/vector-index.ts).
  sqliteVec.load(sqlite);
  const db = new Kysely<Database>({ dialect: new SqliteDialect({ database: sqlite }) });
  try {
    const migrate = options.migrate ?? true;
    // SQLite has no transactional DDL in kysely's migrator and no advisory locks: one write
    // transaction around the whole check-and-migrate makes it atomic, and makes processes
    // opening a new file at once take turns (the busy timeout is their wait).
    if (migrate) await beginImmediate(sqlite, options.busyTimeoutMs ?? 5000);
    let schemaVersion: string;
    try {
      schemaVersion = await prepareSchema(db, migrate, undefined);
      if (migrate) sqlite.exec('COMMIT');
    } catch (error) {
      if (sqlite.inTransaction) sqlite.exec('ROLLBACK');
      throw error;
    }
    const version = sqlite.prepare('select sqlite_version()').pluck().get() as string;
    const vec = sqlite.prepare('select vec_version()').pluck().get() as string;
    return {
      backend: 'sqlite',
      db,
      sqlite,
      file,
      location: file,
      schemaVersion,
      engine: { backend: 'sqlite', version, vectors: `sqlite-vec ${vec}` },
      close: () => db.destroy(),
    };
  } catch (error) {
    await db.destroy();
    throw error;
  }
}

/**
 * BEGIN IMMEDIATE, waiting for another writer without blocking the event loop (a busy
 * timeout would block it, and so a connection of this same process holding the lock).
 */
async function beginImmediate(sqlite: SqliteDatabase.Database, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  sqlite.pragma('busy_timeout = 0');
  try {
    for (;;) {
      try {
        sqlite.exec('BEGIN IMMEDIATE');
        return;
      } catch (error) {
        if ((error as { code?: string }).code !== 'SQLITE_BUSY' || Date.now() > deadline)
          throw error;
        await new Promise((resolve) => setTimeout(resolve, 10));
      }
    }
  } finally {
    sqlite.pragma(`busy_timeout = ${timeoutMs}`);
  }
}

// int8 (count(*), bigint columns holding Date.now()) and numeric (sum of bigints) come back
// as strings from `pg` unless parsed. Every such value Menagerie stores fits a double.
const INT8_OID = 20;
const NUMERIC_OID = 1700;
const pgTypes = {
  getTypeParser: ((oid: number, format?: 'text' | 'binary') =>
    oid === INT8_OID || oid === NUMERIC_OID
      ? (value: string) => Number(value)
      : pg.types.getTypeParser(oid, format)) as typeof pg.types.getTypeParser,
};

/** The URL's `schema` parameter, and the URL `pg` gets without it. */
export function parsePostgresUrl(url: string): { connectionString: string; schema: string } {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw new MenagerieError(
      'CONFIG_INVALID',
      `'${redactUrl(url)}' is not a valid postgres:// URL`,
    );
  }
  const schema = parsed.searchParams.get('schema') ?? 'public';
  if (!/^[a-z_][a-z0-9_]{0,62}$/.test(schema))
    throw new MenagerieError(
      'CONFIG_INVALID',
      `schema should be 1–63 lowercase letters, digits or '_', got '${schema}'`,
    );
  parsed.searchParams.delete('schema');
  return { connectionString: parsed.href, schema };
}

/** The URL with its password replaced by `***`, for messages and `doctor`. */
export function redactUrl(url: string): string {
  return url.replace(/(\/\/[^:/@]+:)[^@/]*@/, '$1***@');
}

async function openPostgres(
  url: string,
  options: OpenDatabaseOptions,
): Promise<PostgresOpenDatabase> {
  const { connectionString, schema } = parsePostgresUrl(url);
  const pool = new pg.Pool({
    connectionString,
    max: options.maxConnections ?? 10,
    types: pgTypes,
    // Unqualified names resolve in the workspace's schema; `public` holds the vector type.
    options: `-c search_path=${schema},public`,
    application_name: 'menagerie',
  });
  // An idle client that loses its server (a restart) must not crash the process.
  pool.on('error', () => {});
  const db = new Kysely<Database>({ dialect: new PostgresDialect({ pool }) });
  try {
    await ensureSchema(db, schema);
    const schemaVersion = await withAdvisoryLock(
      connectionString,
      `menagerie:migrate:${schema}`,
      () => prepareSchema(db, options.migrate ?? true, schema),
    );
    const { rows } = await pool.query<{ version: string; vector: string | null }>(
      "select current_setting('server_version') as version, " +
        "(select extversion from pg_extension where extname = 'vector') as vector",
    );
    return {
      backend: 'postgres',
      db,
      pool,
      schema,
      location: redactUrl(url),
      schemaVersion,
      engine: {
        backend: 'postgres',
        version: rows[0]!.version,
        vectors: rows[0]!.vector ? `pgvector ${rows[0]!.vector}` : null,
      },
      close: () => db.destroy(),
    };
  } catch (error) {
    await db.destroy();
    if (error instanceof MenagerieError) throw error;
    throw new MenagerieError(
      'DB_UNAVAILABLE',
      `cannot open ${redactUrl(url)}: ${error instanceof Error ? error.message : String(error)}`,
      { cause: error },
    );
  }
}

async function ensureSchema(db: Kysely<Database>, schema: string): Promise<void> {
  const exists = async () =>
    (
      await sql<{
        n: number;
      }>`select count(*) as n from pg_namespace where nspname = ${schema}`.execute(db)
    ).rows[0]!.n > 0;
  if (await exists()) return;
  try {
    await sql`create schema if not exists ${sql.id(schema)}`.execute(db);
  } catch (error) {
    // Two openers racing: `if not exists` can still fail on the catalog's unique index.
    if (!(await exists())) throw error;
  }
}

/**
 * Runs `fn` while this process holds a session-level advisory lock named `key`, on a
 * connection of its own (outside the pool, which `fn` uses): other openers of the same
 * schema wait, so N replicas starting at once migrate exactly once, and the later ones
 * find the schema current.
 */
export async function withAdvisoryLock<T>(
  connectionString: string,
  key: string,
  fn: () => Promise<T>,
): Promise<T> {
  const client = new pg.Client({ connectionString, application_name: 'menagerie-migrate' });
  client.on('error', () => {});
  await client.connect();
  try {
    await client.query('select pg_advisory_lock(hashtextextended($1, 0))', [key]);
    return await fn();
  } finally {
    // Ending the session releases the lock.
    await client.end();
  }
}

async function prepareSchema(
  db: Kysely<Database>,
  migrate: boolean,
  schema: string | undefined,
): Promise<string> {
  const migrator = new Migrator({
    db,
    provider,
    // On PostgreSQL kysely's own tables sit beside ours, in the workspace's schema.
    ...(schema !== undefined && { migrationTableSchema: schema }),
  });
  const known = new Set(Object.keys(migrations));
  const appliedNames = await appliedMigrationNames(db, schema);
  const unknown = appliedNames.filter((n) => !known.has(n));
  if (unknown.length > 0) {
    throw new MenagerieError(
      'DB_SCHEMA_TOO_NEW',
      `the database has schema ${unknown.at(-1)}, newer than this Menagerie knows ` +
        `(${[...known].at(-1)}); upgrade Menagerie or open another database`,
    );
  }
  if (migrate && appliedNames.length < known.size) {
    const { error, results } = await migrator.migrateToLatest();
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
  return appliedNames.at(-1) ?? 'none';
}

async function appliedMigrationNames(
  db: Kysely<Database>,
  schema: string | undefined,
): Promise<string[]> {
  const exists =
    schema === undefined
      ? await sql<{
          n: number;
        }>`select count(*) as n from sqlite_master where type = 'table' and name = 'kysely_migration'`.execute(
          db,
        )
      : await sql<{
          n: number;
        }>`select count(*) as n from pg_tables where schemaname = ${schema} and tablename = 'kysely_migration'`.execute(
          db,
        );
  if (Number(exists.rows[0]!.n) === 0) return [];
  // The migration table is kysely's, outside the typed Database.
  const rows = await (db as unknown as Kysely<{ kysely_migration: { name: string } }>)
    .selectFrom('kysely_migration')
    .select('name')
    .orderBy('name')
    .execute();
  return rows.map((r) => r.name);
}
