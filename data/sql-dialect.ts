import { PostgresAdapter, sql, type Expression, type Kysely, type SqlBool } from 'kysely';

/** The backend behind a Kysely instance (or transaction). */
export type SqlDialect = 'sqlite' | 'postgres';

export function dialectOf<DB>(db: Kysely<DB>): SqlDialect {
  return db.getExecutor().adapter instanceof PostgresAdapter ? 'postgres' : 'sqlite';
}

/** SQLite's LIKE ignores case; GLOB matches it, so a case-sensitive LIKE becomes a GLOB. */
function likeToGlob(pattern: string): string {
  return pattern.replace(/[*?[]/g, '[$&]').replace(/%/g, '*').replace(/_/g, '?');
}

/**
 * `lhs LIKE pattern` with the same meaning on both backends: `%` and `_` are the only
 * wildcards (no escape character: PostgreSQL's default `\` is turned off), and case
 * matters only when `caseSensitive` (SQLite's LIKE never minds case; PostgreSQL's always
 * does, so each side gets the operator that says what is meant).
 *
 * ```ts
 * db.selectFrom('registered_models').selectAll()
 *   .where((eb) => like(dialectOf(db), eb.ref('name'), '%Faces%', { caseSensitive: false }));
 * // SQLite: "name" like ?      PostgreSQL: "name" ilike $1 escape ''
 * ```
 */
export function like(
  dialect: SqlDialect,
  lhs: Expression<string | null>,
  pattern: string,
  { caseSensitive }: { caseSensitive: boolean },
): Expression<SqlBool> {
  if (dialect === 'postgres')
    return caseSensitive
      ? sql<SqlBool>`${lhs} like ${pattern} escape ''`
      : sql<SqlBool>`${lhs} ilike ${pattern} escape ''`;
  return caseSensitive
    ? sql<SqlBool>`${lhs} glob ${likeToGlob(pattern)}`
    : sql<SqlBool>`${lhs} like ${pattern}`;
}
