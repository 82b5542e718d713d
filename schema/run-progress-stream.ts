import type { RunProgressUpdate } from '../jobs/run-progress.js';
import { latestMetrics } from '../tracking/run-details.js';
import type { MenagerieServices } from './context.js';
import { progressStream, stillExiting } from './progress-stream.js';

/**
 * The `runProgress(runId)` stream: first the run as it stands (status, latest metrics),
 * then every update about it or its trials, ending after the run's final update. A run that
 * already ended gives its one snapshot. Throws RUN_NOT_FOUND for an unknown id.
 */
export async function runProgressStream(
  services: Pick<MenagerieServices, 'events' | 'tracking' | 'database' | 'jobs'>,
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
      final: run.status !== 'RUNNING' && !stillExiting(services.jobs, run.id),
    };
  } catch (error) {
    await updates.return?.();
    throw error;
  }
  return progressStream(updates, snapshot, {
    concerns: (u) => u.runId === runId || u.parentRunId === runId,
    ends: (u) => u.final && u.runId === runId,
  });
}
