import type { JobRunner } from '../jobs/job-runner.js';

/**
 * A subscription's stream of a job's progress: first `snapshot` (the job as it stands),
 * then every update from `updates` that `concerns` the job, ending after the update that
 * `ends` it. A snapshot that already ends it is the only value. `updates` must be
 * subscribed before the snapshot is read, so no update falls between the two.
 *
 * Hand-written rather than an async generator, as in core/event-hub.ts, so that a
 * subscriber leaving a quiet job is released at once.
 *
 * ```ts
 * const updates = events.subscribe('runProgress');
 * const stream = progressStream(updates, await snapshotOf(runId), {
 *   concerns: (u) => u.runId === runId,
 *   ends: (u) => u.final && u.runId === runId,
 * });
 * ```
 */
export function progressStream<T>(
  updates: AsyncIterableIterator<T>,
  snapshot: T,
  rules: { concerns(update: T): boolean; ends(update: T): boolean },
): AsyncIterableIterator<T> {
  let pending: T | null = snapshot;
  let done = false;
  const finish = async (): Promise<IteratorResult<T>> => {
    done = true;
    await updates.return?.();
    return { done: true, value: undefined };
  };
  const iterator: AsyncIterableIterator<T> = {
    async next() {
      if (done) return { done: true, value: undefined };
      if (pending !== null) {
        const value = pending;
        pending = null;
        if (rules.ends(value)) {
          done = true;
          await updates.return?.();
        }
        return { done: false, value };
      }
      for (;;) {
        const result = await updates.next();
        if (result.done || done) return finish();
        const update = result.value;
        if (!rules.concerns(update)) continue;
        if (rules.ends(update)) {
          // Deliver the last update, then end the stream on the next pull.
          done = true;
          await updates.return?.();
        }
        return { done: false, value: update };
      }
    },
    return: finish,
    [Symbol.asyncIterator]() {
      return iterator;
    },
  };
  return iterator;
}

/**
 * Whether a job that the database says has ended still holds its slot in this server's job
 * runner (its process is exiting). Its snapshot is then not final: the runner's own final
 * update, sent once the slot is free, ends the stream, so a client told "finished" can start
 * the next job at once.
 */
export function stillExiting(jobs: Pick<JobRunner, 'running'>, id: string): boolean {
  return jobs.running().some((job) => job.id === id);
}
