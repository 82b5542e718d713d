import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { afterAll, describe } from 'vitest';
import { openDatabase, type OpenDatabase } from '../../data/database.js';
import { startServices, type ServiceName } from '../../dev-services/services.js';

/**
 * Backends for parameterised suites. The data, tracking, registry and serving suites run
 * once per database backend, the storage suites once per store, as one suite each:
 *
 * ```ts
 * forEachDatabase((backend) => {
 *   let database: OpenDatabase;
 *   beforeEach(async () => (database = await backend.open()));
 *   afterEach(() => database.close());
 *   it('…', …);
 * });
 * ```
 *
 * PostgreSQL and the S3 gateway come from dev-services, started on first use under one
 * state folder of the run's, with its lock, so parallel Vitest forks share one server; the
 * global setup (tests/helpers/services-global-setup.ts) stops them at the end of the run. Each test
 * file gets its own schema (`?schema=`) and S3 prefix, dropped when the file ends; within a
 * file, `open()` empties the tables so each test starts from a fresh database.
 * MENAGERIE_TEST_BACKENDS=sqlite,local (say) narrows the run.
 */
export type DatabaseBackendName = 'sqlite' | 'postgres';
export type StoreBackendName = 'local' | 's3';

const chosen = (process.env.MENAGERIE_TEST_BACKENDS ?? '')
  .split(',')
  .map((s) => s.trim())
  .filter(Boolean);
const pick = <T extends string>(all: T[]): T[] =>
  chosen.length === 0 ? all : all.filter((b) => chosen.includes(b));

export const DATABASE_BACKENDS = pick<DatabaseBackendName>(['sqlite', 'postgres']);
export const STORE_BACKENDS = pick<StoreBackendName>(['local', 's3']);

/** The state folder of the services this run starts (set by the global setup, shared by its forks). */
export function testServicesDir(): string {
  const dir = process.env.MENAGERIE_TEST_SERVICES_DIR;
  if (!dir) throw new Error('MENAGERIE_TEST_SERVICES_DIR is unset: run through vitest.config.ts');
  return dir;
}

const envs = new Map<ServiceName, Promise<Record<string, string>>>();

/** The variables of a running service (MENAGERIE_DATABASE_URL…), starting it if needed. */
export function serviceEnv(service: ServiceName): Promise<Record<string, string>> {
  let env = envs.get(service);
  if (!env) {
    env = startServices({ dir: testServicesDir(), which: [service] }).then((s) => s.env);
    envs.set(service, env);
  }
  return env;
}

/** Long enough for a first start on a bare machine (apt installs, the pgvector build). */
export const SERVICE_START_TIMEOUT = 15 * 60_000;

const fileTag = () => `t${process.pid}_${randomBytes(4).toString('hex')}`;

/** A database backend for one test file. */
export interface DatabaseBackend {
  readonly name: DatabaseBackendName;
  /**
   * What `openWorkspace` takes as `database`: undefined for SQLite (the workspace's own
   * file), or the URL of one of this file's PostgreSQL schemas (`name` tells apart the
   * databases a test keeps side by side), emptied first when `fresh`.
   */
  location(options?: { name?: string; fresh?: boolean }): Promise<string | undefined>;
  /** An empty, migrated database: in-memory SQLite, or this file's schema emptied. */
  open(): Promise<OpenDatabase>;
}

/** PostgreSQL schemas of their own for the calling test file; dropped after it. */
function postgresSchemas() {
  const tag = fileTag();
  const migrated = new Set<string>();
  let base: string | undefined;
  const url = async (name: string) => {
    base ??= (await serviceEnv('postgres')).MENAGERIE_DATABASE_URL!;
    return `${base}?schema=${tag}_${name}`;
  };
  return {
    url,
    /** The schema's URL, its tables emptied when it was used before. */
    async fresh(name: string): Promise<string> {
      const location = await url(name);
      if (migrated.has(name)) {
        const database = await openDatabase(location, { maxConnections: 1 });
        await truncateAll(database);
        await database.close();
      }
      migrated.add(name);
      return location;
    },
    async drop() {
      if (!base) return;
      const client = new pg.Client({ connectionString: base });
      await client.connect();
      for (const name of migrated)
        await client.query(`drop schema if exists ${tag}_${name} cascade`);
      await client.end();
    },
  };
}

/** Deletes every row (and every vector table) of a PostgreSQL database's schema. */
async function truncateAll(database: OpenDatabase): Promise<void> {
  if (database.backend !== 'postgres') return;
  const { pool, schema } = database;
  const vectors = await pool.query<{ table_name: string }>('select table_name from vector_spaces');
  for (const { table_name } of vectors.rows) await pool.query(`drop table if exists ${table_name}`);
  const tables = await pool.query<{ name: string }>(
    "select tablename as name from pg_tables where schemaname = $1 and tablename not like 'kysely_%'",
    [schema],
  );
  if (tables.rows.length > 0)
    await pool.query(
      `truncate ${tables.rows.map((t) => `"${t.name}"`).join(', ')} restart identity cascade`,
    );
}

/** A backend for `name`, its PostgreSQL schemas dropped after the file. */
export function databaseBackend(name: DatabaseBackendName): DatabaseBackend {
  const schemas = postgresSchemas();
  // One pool per file, emptied between tests: cheaper than a pool and a migration check each.
  let shared: OpenDatabase | undefined;
  afterAll(async () => {
    await shared?.close();
    await schemas.drop();
  }, SERVICE_START_TIMEOUT);
  return {
    name,
    async location({ name: db = 'main', fresh = false } = {}) {
      if (name === 'sqlite') return undefined;
      return fresh ? schemas.fresh(db) : schemas.url(db);
    },
    async open() {
      if (name === 'sqlite') return openDatabase(':memory:');
      if (shared) await truncateAll(shared);
      else shared = await openDatabase(await schemas.fresh('main'), { maxConnections: 4 });
      // Tests close what they open; this one stays open until the file ends.
      return { ...shared, close: async () => {} } as OpenDatabase;
    },
  };
}

/** Runs `suite` once per database backend, each in a `describe` named for it. */
export function forEachDatabase(suite: (backend: DatabaseBackend) => void): void {
  describe.each(DATABASE_BACKENDS)('on %s', (name) => suite(databaseBackend(name)));
}

/** A store backend for one test file: what `openWorkspace` takes as `store`. */
export interface StoreBackend {
  readonly name: StoreBackendName;
  /** undefined for the local folder; an `s3://` URL with this file's own prefix. */
  url(): Promise<string | undefined>;
  /** The AWS variables the S3 store needs (set them in process.env before opening). */
  env(): Promise<Record<string, string>>;
}

export function storeBackend(name: StoreBackendName): StoreBackend {
  const prefix = fileTag();
  return {
    name,
    async url() {
      if (name === 'local') return undefined;
      const env = await serviceEnv('s3');
      Object.assign(process.env, awsEnv(env));
      const parsed = new URL(env.MENAGERIE_STORE_URL!);
      return `s3://${parsed.hostname}/${prefix}${parsed.search}`;
    },
    async env() {
      return name === 'local' ? {} : awsEnv(await serviceEnv('s3'));
    },
  };
}

function awsEnv(env: Record<string, string>): Record<string, string> {
  return Object.fromEntries(Object.entries(env).filter(([k]) => k.startsWith('AWS_')));
}

/** Runs `suite` once per store backend. */
export function forEachStore(suite: (store: StoreBackend) => void): void {
  describe.each(STORE_BACKENDS)('on %s', (name) => suite(storeBackend(name)));
}
