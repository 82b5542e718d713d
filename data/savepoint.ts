import { sql, type Transaction } from 'kysely';

let counter = 0;

/**
 * Runs `fn` inside a savepoint of `trx`: if it throws, its writes are rolled back and the
 * transaction stays usable. PostgreSQL aborts the whole transaction after any failed
 * statement (SQLite does not), so an error that is caught and handled inside a transaction
 * must come from inside one of these on both backends to behave the same.
 *
 * ```ts
 * await db.transaction().execute(async (trx) => {
 *   const ok = await withSavepoint(trx, (t) => t.insertInto('labels').values(row).execute())
 *     .then(() => true, (e) => { if (isUniqueViolation(e)) return false; throw e; });
 *   // trx goes on either way
 * });
 * ```
 */
export async function withSavepoint<DB, T>(
  trx: Transaction<DB>,
  fn: (trx: Transaction<DB>) => Promise<T>,
): Promise<T> {
  const name = sql.id(`menagerie_sp_${++counter}`);
  await sql`savepoint ${name}`.execute(trx);
  try {
    const result = await fn(trx);
    await sql`release savepoint ${name}`.execute(trx);
    return result;
  } catch (error) {
    await sql`rollback to savepoint ${name}`.execute(trx);
    await sql`release savepoint ${name}`.execute(trx);
    throw error;
  }
}
