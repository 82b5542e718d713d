import { PostgresAdapter, type ColumnDefinitionBuilder, type Kysely } from 'kysely';

// Column types for migrations that run on SQLite and PostgreSQL alike (see README.md here).
// Append-only, like the migrations that use it: a helper's output never changes once a
// migration has shipped with it; a new need gets a new helper.

export function isPostgres(db: Kysely<any>): boolean {
  return db.getExecutor().adapter instanceof PostgresAdapter;
}

/** The SQL types that differ between the two backends. */
export function columnTypes(db: Kysely<any>) {
  const pg = isPostgres(db);
  return {
    /** Milliseconds since the epoch (`Date.now()`): needs 64 bits, so `bigint` on PostgreSQL. */
    millis: pg ? 'bigint' : 'integer',
    /** Any other whole number that may pass 2^31 (metric steps). */
    int64: pg ? 'bigint' : 'integer',
    /** A double: PostgreSQL's `real` is 4 bytes, SQLite's is 8. */
    double: pg ? 'double precision' : 'real',
  } as const;
}

/**
 * An integer primary key the database numbers: SQLite's AUTOINCREMENT rowid, an identity
 * column on PostgreSQL (by default, so a copy between databases may keep its ids).
 *
 * ```ts
 * db.schema.createTable('labels').addColumn('id', 'integer', autoId(db));
 * ```
 */
export function autoId(db: Kysely<any>) {
  const pg = isPostgres(db);
  return (c: ColumnDefinitionBuilder) =>
    pg ? c.generatedByDefaultAsIdentity().primaryKey() : c.primaryKey().autoIncrement();
}
