import os from 'node:os';
import type { Kysely } from 'kysely';
import { isProcessAlive } from '../core/process-alive.js';
import type { Database } from '../data/tables.js';

/** The tag a run marked FAILED by `failStaleRuns` carries, saying why. */
export const FAILURE_REASON_TAG = 'menagerie.failure_reason';

/** How long a run owned by another host may go without a heartbeat (default 10 minutes). */
export const DEFAULT_HEARTBEAT_TIMEOUT_MS = 10 * 60_000;

export interface StaleRun {
  runId: string;
  reason: string;
}

export interface FailStaleRunsOptions {
  heartbeatTimeoutMs?: number;
  now?: number;
  /** This machine's name (default `os.hostname()`). */
  hostname?: string;
  isProcessAlive?: (pid: number) => boolean;
}

/**
 * Marks FAILED the RUNNING runs whose owner is gone: on this host, its process no longer
 * exists; on another host, its heartbeat is older than the timeout. Each gets an end time
 * (its last heartbeat: the last sign of life) and a `menagerie.failure_reason` tag. Runs at
 * every workspace open, so a killed training never stays RUNNING.
 *
 * A reused pid makes a dead owner look alive until that process exits; the run is then
 * marked at the next open after it.
 *
 * ```ts
 * import { failStaleRuns } from './tracking/stale-runs.js';
 * const failed = await failStaleRuns(db); // [{ runId, reason: 'owner process 4242 on …' }]
 * ```
 */
export async function failStaleRuns(
  db: Kysely<Database>,
  options: FailStaleRunsOptions = {},
): Promise<StaleRun[]> {
  const now = options.now ?? Date.now();
  const host = options.hostname ?? os.hostname();
  const timeout = options.heartbeatTimeoutMs ?? DEFAULT_HEARTBEAT_TIMEOUT_MS;
  const alive = options.isProcessAlive ?? isProcessAlive;
  const running = await db
    .selectFrom('runs')
    .select(['id', 'owner_pid', 'hostname', 'heartbeat_at', 'start_time'])
    .where('status', '=', 'RUNNING')
    .execute();
  const stale: (StaleRun & { endTime: number })[] = [];
  for (const run of running) {
    const lastSign = run.heartbeat_at ?? run.start_time;
    let reason: string | undefined;
    if (run.hostname === host && run.owner_pid !== null) {
      if (run.owner_pid !== process.pid && !alive(run.owner_pid))
        reason = `owner process ${run.owner_pid} on ${host} exited without ending the run`;
    } else if (now - lastSign > timeout) {
      reason =
        `no heartbeat from ${run.hostname ?? 'an unknown host'} since ` +
        `${new Date(lastSign).toISOString()} (timeout ${Math.round(timeout / 1000)} s)`;
    }
    if (reason) stale.push({ runId: run.id, reason, endTime: Math.min(lastSign, now) });
  }
  if (stale.length === 0) return [];
  const failed: StaleRun[] = [];
  await db.transaction().execute(async (trx) => {
    for (const run of stale) {
      // Guarded by status: a concurrent opener (or the owner ending it) may have got there first.
      const result = await trx
        .updateTable('runs')
        .set({ status: 'FAILED', end_time: run.endTime })
        .where('id', '=', run.runId)
        .where('status', '=', 'RUNNING')
        .executeTakeFirst();
      if (result.numUpdatedRows === 0n) continue;
      await trx
        .insertInto('run_tags')
        .values({ run_id: run.runId, key: FAILURE_REASON_TAG, value: run.reason })
        .onConflict((oc) => oc.columns(['run_id', 'key']).doUpdateSet({ value: run.reason }))
        .execute();
      failed.push({ runId: run.runId, reason: run.reason });
    }
  });
  return failed;
}
