import type { Kysely, Selectable, Transaction } from 'kysely';
import { MenagerieError } from '../core/errors.js';
import type { Database, RunTable } from '../data/tables.js';

const RUN_ID_PATTERN = /^[0-9a-f]{32}$/;

/** Throws RUN_NOT_FOUND, without querying for an id that cannot be one. */
export async function getRunRow(
  executor: Kysely<Database>,
  runId: string,
): Promise<Selectable<RunTable>> {
  const row = RUN_ID_PATTERN.test(runId)
    ? await executor.selectFrom('runs').selectAll().where('id', '=', runId).executeTakeFirst()
    : undefined;
  if (!row)
    throw new MenagerieError('RUN_NOT_FOUND', `no run has id '${String(runId).slice(0, 64)}'`);
  return row;
}

/** The RUN_NOT_ACTIVE error for a run that takes no more `what` (params, metrics…). */
export function notActive(row: Selectable<RunTable>, what: string): MenagerieError {
  const state = row.lifecycle === 'deleted' ? 'deleted' : row.status;
  return new MenagerieError(
    'RUN_NOT_ACTIVE',
    `run ${row.id} is ${state}, so it takes no more ${what}; start a new run`,
  );
}

/**
 * Inside a write transaction: proves the run RUNNING and refreshes its heartbeat. The
 * update comes first so the transaction holds SQLite's write lock from its first
 * statement (a read first could fail with SQLITE_BUSY when it upgrades).
 */
export async function touchActiveRun(
  trx: Transaction<Database>,
  runId: string,
  what: string,
): Promise<void> {
  const result = RUN_ID_PATTERN.test(runId)
    ? await trx
        .updateTable('runs')
        .set({ heartbeat_at: Date.now() })
        .where('id', '=', runId)
        .where('status', '=', 'RUNNING')
        .where('lifecycle', '=', 'active')
        .executeTakeFirst()
    : undefined;
  if (!result || result.numUpdatedRows === 0n) throw notActive(await getRunRow(trx, runId), what);
}
