/**
 * True when a query failed on a unique (or primary key) constraint, on either backend:
 * better-sqlite3's `SQLITE_CONSTRAINT_UNIQUE`/`_PRIMARYKEY`, PostgreSQL's SQLSTATE 23505.
 * Callers map it to their own code (EXPERIMENT_EXISTS, MODEL_EXISTS…), so both backends
 * report a taken name the same way.
 *
 * ```ts
 * try { await insertExperiment(); } catch (e) { if (isUniqueViolation(e)) throw exists(); throw e; }
 * ```
 */
export function isUniqueViolation(error: unknown): boolean {
  const code = (error as { code?: unknown } | null)?.code;
  return (
    code === '23505' ||
    code === 'SQLITE_CONSTRAINT_UNIQUE' ||
    code === 'SQLITE_CONSTRAINT_PRIMARYKEY'
  );
}
