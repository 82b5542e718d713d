import type { RunProgressUpdate } from '../jobs/run-progress.js';
import { latestMetrics } from '../tracking/run-details.js';
import type { MenagerieServices } from './context.js';

/**
 * The `runProgress(runId)` stream: first the run as it stands (status, latest metrics),
 * then every update about it or its trials, ending after the run's final update. A run that
 * already ended gives its one snapshot. Throws RUN_NOT_FOUND for an unknown id.
 *
 * Hand-written rather than an async generator, as in event-hub.ts, so that a subscriber
 * leaving a quiet run is released at once.
 */
export async function runProgressStream(
  services: Pick<MenagerieServices, 'events' | 'tracking' | 'database'>,
  runId: string,
): Promise<AsyncIterableIterator<RunProgressUpdate>> {
  // Subscribe before reading the snapshot, so no update falls between the two.
  const updates = services.events.subscribe('runProgress');
  let snapshot: RunProgressUpdate;
  try {
    const run = await services.tracking.getRun(runId);
    snapshot = {
      runId: run.id,
      parentRunId: run.parentRunId,
      status: run.status,
      epoch: null,
      epochs: null,
      batch: null,
      batches: null,
      metrics: await latestMetrics(services.database.db, run.id),
      message: null,
      final: run.status !== 'RUNNING',
    };
  } catch (error) {
    await updates.return?.();
    throw error;
  }

  let pending: RunProgressUpdate | null = snapshot;
  let done = false;
  const finish = async (): Promise<IteratorResult<RunProgressUpdate>> => {
    done = true;
    await updates.return?.();
    return { done: true, value: undefined };
  };
  const iterator: AsyncIterableIterator<RunProgressUpdate> = {
    async next() {
      if (done) return { done: true, value: undefined };
      if (pending) {
        const value = pending;
        pending = null;
        if (value.final) done = true;
        if (done) await updates.return?.();
        return { done: false, value };
      }
      for (;;) {
        const result = await updates.next();
        if (result.done || done) return finish();
        const update = result.value;
        if (update.runId !== runId && update.parentRunId !== runId) continue;
        if (update.final && update.runId === runId) {
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
