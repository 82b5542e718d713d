import { createHash } from 'node:crypto';
import { sql, type Kysely } from 'kysely';
import { MenagerieError } from '../core/errors.js';
import { namedBlobUris } from '../data/blob-references.js';
import { uriScheme } from '../data/blob-store.js';
import type { OpenDatabase } from '../data/database.js';
import type { Database } from '../data/tables.js';
import { vectorIndex } from '../serving/vector-index.js';
import type { Workspace } from './workspace.js';

/**
 * Every table a workspace copy moves, parents before children (foreign keys), each with
 * the columns that order its rows. A table the schema has and this list lacks stops the
 * copy before it starts: a new table must be added here to be moved.
 */
const COPY_ORDER: readonly (readonly [keyof Database, readonly string[]])[] = [
  ['labels', ['id']],
  ['images', ['id']],
  ['experiments', ['id']],
  ['experiment_tags', ['experiment_id', 'key']],
  // Parents first: a tuning run starts before its trials (parent_run_id).
  ['runs', ['start_time', 'id']],
  ['params', ['run_id', 'key']],
  ['metrics', ['id']],
  ['latest_metrics', ['run_id', 'key']],
  ['run_tags', ['run_id', 'key']],
  ['registered_models', ['id']],
  ['registered_model_tags', ['model_id', 'key']],
  ['model_versions', ['id']],
  ['model_version_tags', ['version_id', 'key']],
  ['model_aliases', ['model_id', 'alias']],
  ['stage_transitions', ['id']],
  ['embedding_jobs', ['id']],
  ['predictions', ['id']],
  ['model_evaluations', ['created_at', 'id']],
  ['model_evaluation_errors', ['evaluation_id', 'rank']],
  ['tuning_searches', ['id']],
  ['feature_spaces', ['id']],
];
/** Tables that are not copied as rows: kysely's own, and the vector index's (copied by space). */
const NOT_ROWS = new Set(['kysely_migration', 'kysely_migration_lock', 'vector_spaces']);
const BATCH = 500;

export interface CopyReport {
  /** Rows per table in the target, all equal to the source's. */
  rows: Record<string, number>;
  blobs: number;
  artifactFolders: number;
  artifactFiles: number;
  vectors: Record<string, number>;
}

type Log = (line: string) => void;
type AnyDb = Kysely<Record<string, Record<string, unknown>>>;

/**
 * Copies a workspace into another: every row (ids kept), every blob the rows name, every
 * run's and model version's artifact folder (URIs rewritten to the target store), and
 * every vector space. SQLite + local folder to PostgreSQL + S3 and back. Resumable: rows
 * are inserted with `on conflict do nothing`, and blobs, files and vectors already in the
 * target are skipped, so a copy that was killed is finished by running it again. It ends
 * by comparing row counts, and the sha256 of every blob and artifact file, with the source.
 *
 * ```ts
 * const target = await openWorkspace({ dataDir, database: 'postgres://…', store: 's3://…' });
 * await copyWorkspace(source, target, { log: console.log }); // throws STORE_COPY_MISMATCH
 * ```
 */
export async function copyWorkspace(
  source: Workspace,
  target: Workspace,
  options: { log?: Log } = {},
): Promise<CopyReport> {
  const log = options.log ?? (() => {});
  if (source.database.location === target.database.location)
    throw new MenagerieError('CONFIG_INVALID', 'the target database is the source database');
  await checkTables(source.database);

  const rewrite = await artifactRewriter(source, target);
  const report: CopyReport = {
    rows: {},
    blobs: 0,
    artifactFolders: 0,
    artifactFiles: 0,
    vectors: {},
  };

  for (const [table, key] of COPY_ORDER) {
    const copied = await copyTable(source.database, target.database, table, key, rewrite.row);
    log(`rows      ${table.padEnd(22)} ${copied}`);
  }
  await resetIdentities(target.database);

  const blobs = await blobUris(source.database.db);
  for (const uri of blobs) {
    const stat = await target.blobs.stat(uri);
    if (stat) continue;
    const bytes = await source.blobs.get(uri);
    const written = await target.blobs.put(bytes, {
      sha256: sha256Of(bytes),
      ...(extOf(uri) && { ext: extOf(uri)! }),
    });
    if (written !== uri)
      throw new MenagerieError('STORE_COPY_MISMATCH', `${uri} was stored as ${written}`);
  }
  log(`blobs     ${blobs.length}`);

  for (const [from, to] of rewrite.folders()) {
    const there = new Map((await target.artifacts.list(to)).map((f) => [f.path, f.bytes]));
    const here = await source.artifacts.list(from);
    if (here.length > 0 && here.every((f) => there.get(f.path) === f.bytes)) continue;
    await target.artifacts.uploadFolder(await source.artifacts.localFolder(from), to);
  }
  log(`artifacts ${rewrite.folders().length} folders`);

  const from = vectorIndex(source.database);
  const to = vectorIndex(target.database);
  for (const space of await from.spaces()) {
    await to.ensure(space.space, space.dimension);
    if ((await to.count(space.space)) !== space.count) {
      for (let after = 0; ;) {
        const items = await from.scan(space.space, after, BATCH);
        if (items.length === 0) break;
        await to.upsert(space.space, items);
        after = items.at(-1)!.id;
      }
    }
    await to.optimize(space.space);
    log(`vectors   ${space.space.padEnd(22)} ${space.count}`);
  }

  // Verify: counts, then every byte by sha256.
  const mismatches: string[] = [];
  for (const [table] of COPY_ORDER) {
    const [a, b] = await Promise.all([
      count(source.database.db, table),
      count(target.database.db, table),
    ]);
    report.rows[table] = b;
    if (a !== b) mismatches.push(`${table}: ${a} rows in the source, ${b} in the target`);
  }
  for (const uri of blobs) {
    const bytes = await target.blobs.get(uri).catch(() => null);
    if (!bytes || !uri.includes(sha256Of(bytes))) mismatches.push(`blob ${uri} differs`);
    else report.blobs++;
  }
  for (const [fromUri, toUri] of rewrite.folders()) {
    report.artifactFolders++;
    for (const file of await source.artifacts.list(fromUri)) {
      const [a, b] = await Promise.all([
        source.artifacts.read(fromUri, file.path),
        target.artifacts.read(toUri, file.path),
      ]);
      if (!a || !b || sha256Of(a) !== sha256Of(b))
        mismatches.push(`artifact ${toUri}/${file.path} differs`);
      else report.artifactFiles++;
    }
  }
  for (const space of await from.spaces()) {
    const n = await to.count(space.space);
    report.vectors[space.space] = n;
    if (n !== space.count)
      mismatches.push(`vectors ${space.space}: ${space.count} in the source, ${n} in the target`);
  }
  if (mismatches.length > 0)
    throw new MenagerieError(
      'STORE_COPY_MISMATCH',
      `${mismatches.length} differences: ${mismatches.slice(0, 10).join('; ')}`,
    );
  log(
    `verified  ${Object.values(report.rows).reduce((a, b) => a + b, 0)} rows, ${report.blobs} blobs, ` +
      `${report.artifactFiles} artifact files (sha256), ${Object.keys(report.vectors).length} vector spaces`,
  );
  return report;
}

/** Refuses a schema with tables this copy does not know (a newer Menagerie's). */
async function checkTables(database: OpenDatabase): Promise<void> {
  const known = new Set<string>(COPY_ORDER.map(([t]) => t));
  const vectorTables = new Set(
    (await database.db.selectFrom('vector_spaces').select('table_name').execute()).map(
      (r) => r.table_name,
    ),
  );
  const names =
    database.backend === 'postgres'
      ? (
          await sql<{
            name: string;
          }>`select tablename as name from pg_tables where schemaname = ${database.schema}`.execute(
            database.db,
          )
        ).rows
      : (
          await sql<{
            name: string;
          }>`select name from sqlite_master where type = 'table' and name not like 'sqlite_%'`.execute(
            database.db,
          )
        ).rows;
  const unknown = names
    .map((r) => r.name)
    .filter(
      (n) =>
        !known.has(n) &&
        !NOT_ROWS.has(n) &&
        ![...vectorTables].some((t) => n === t || n.startsWith(`${t}_`)),
    );
  if (unknown.length > 0)
    throw new MenagerieError(
      'STORE_COPY_MISMATCH',
      `tables ${unknown.join(', ')} are not known to migrate-store: add them to COPY_ORDER in cli/workspace-copy.ts`,
    );
}

async function copyTable(
  source: OpenDatabase,
  target: OpenDatabase,
  table: string,
  key: readonly string[],
  rewrite: (table: string, row: Record<string, unknown>) => Record<string, unknown>,
): Promise<number> {
  const from = source.db as unknown as AnyDb;
  const to = target.db as unknown as AnyDb;
  const total = await count(source.db, table);
  // Resuming: a table already complete is skipped without reading it.
  if ((await count(target.db, table)) === total) return total;
  for (let offset = 0; offset < total; offset += BATCH) {
    let query = from.selectFrom(table).selectAll();
    for (const column of key) query = query.orderBy(column);
    const rows = await query.limit(BATCH).offset(offset).execute();
    if (rows.length === 0) break;
    await to
      .insertInto(table)
      .values(rows.map((r) => rewrite(table, r)))
      .onConflict((oc) => oc.doNothing())
      .execute();
  }
  return total;
}

/** PostgreSQL identities do not move with inserted ids: set each past the largest copied. */
async function resetIdentities(database: OpenDatabase): Promise<void> {
  if (database.backend !== 'postgres') return;
  for (const [table, key] of COPY_ORDER) {
    if (key.length !== 1 || key[0] !== 'id') continue;
    await sql`select setval(pg_get_serial_sequence(${table}, 'id'), coalesce(max(id), 0) + 1, false) from ${sql.table(table)}`.execute(
      database.db,
    );
  }
}

async function count(db: Kysely<Database>, table: string): Promise<number> {
  const row = await (db as unknown as AnyDb)
    .selectFrom(table)
    .select((eb) => eb.fn.countAll<number>().as('n'))
    .executeTakeFirstOrThrow();
  return Number(row.n);
}

/** Every `blob:` URI the rows name (images, kept uploads, evaluations' images and plots). */
async function blobUris(db: Kysely<Database>): Promise<string[]> {
  const uris = await namedBlobUris(db);
  return [...uris].filter((u) => uriScheme(u) === 'blob').sort();
}

/**
 * Artifact URIs in the source (runs' folders, model versions' sources) and where each goes
 * in the target: the same path under the target's root, or `imported/<hash>` for a folder
 * outside the source's root (a model registered from a path). A version saved inside a
 * run's folder moves with that folder.
 */
async function artifactRewriter(source: Workspace, target: Workspace) {
  const fromRoot = source.artifacts.folderUri('x').slice(0, -1);
  const toKey = (uri: string) =>
    uri.startsWith(fromRoot)
      ? decodeURIComponent(uri.slice(fromRoot.length))
      : `imported/${createHash('sha256').update(uri).digest('hex').slice(0, 16)}`;
  const runs = new Map<string, string>();
  for (const { artifact_uri: uri } of await source.database.db
    .selectFrom('runs')
    .select('artifact_uri')
    .execute())
    runs.set(uri, target.artifacts.folderUri(toKey(uri)));
  const versions = new Map<string, string>();
  for (const { source: uri } of await source.database.db
    .selectFrom('model_versions')
    .select('source')
    .execute()) {
    const run = [...runs.keys()].find((r) => uri.startsWith(`${r}/`));
    versions.set(
      uri,
      run ? `${runs.get(run)!}${uri.slice(run.length)}` : target.artifacts.folderUri(toKey(uri)),
    );
  }
  return {
    row(table: string, row: Record<string, unknown>): Record<string, unknown> {
      if (table === 'runs') return { ...row, artifact_uri: runs.get(String(row['artifact_uri'])) };
      if (table === 'model_versions')
        return { ...row, source: versions.get(String(row['source'])) };
      return row;
    },
    /** Folders to copy: every run's, and each version's that lives outside a run's. */
    folders(): [string, string][] {
      return [
        ...runs.entries(),
        ...[...versions.entries()].filter(
          ([uri]) => ![...runs.keys()].some((r) => uri.startsWith(`${r}/`)),
        ),
      ];
    },
  };
}

function sha256Of(bytes: Uint8Array): string {
  return createHash('sha256').update(bytes).digest('hex');
}

function extOf(uri: string): string | undefined {
  return /\.([a-z0-9]{1,8})$/.exec(uri)?.[1];
}
