import { isMenagerieError } from '../core/errors.js';
import { formatJobEvent, type JobEvent } from '../jobs/run-progress.js';
import type { TrainingObserver } from '../training/training-observer.js';

/**
 * `--progress-json`: one JSON line per job event on stdout (jobs/run-progress.ts), for
 * a parent process such as the API server. Human output then goes to stderr only.
 *
 * ```ts
 * const progress = jsonProgress();
 * progress.emit({ event: 'run', runId, kind: 'training' });
 * ```
 */
export interface JsonProgress {
  emit(event: JobEvent): void;
  /** Batch and epoch events of the run `runId()` names when they happen. */
  observer(
    epochs: number,
    runId: () => string | undefined,
    parentRunId?: () => string | undefined,
  ): TrainingObserver;
  /** The error event for a job that threw (the CLI still prints and exits 1). */
  fail(error: unknown, runId: string | undefined): void;
}

export function jsonProgress(
  write: (line: string) => void = (line) => process.stdout.write(`${line}\n`),
): JsonProgress {
  const emit = (event: JobEvent) => write(formatJobEvent(event));
  return {
    emit,
    observer(epochs, runId, parentRunId) {
      const ids = () => {
        const id = runId();
        const parent = parentRunId?.();
        return id === undefined
          ? undefined
          : { runId: id, ...(parent ? { parentRunId: parent } : {}) };
      };
      return {
        onDataProgress({ stage, done, total }) {
          const at = ids();
          if (at) emit({ event: 'prepare', ...at, stage, done, total });
        },
        onBatchEnd(epoch, batch, loss, info) {
          const at = ids();
          if (at)
            emit({ event: 'batch', ...at, epoch, epochs, batch, batches: info.batches, loss });
        },
        onEpochEnd(epoch, metrics) {
          const at = ids();
          if (at) emit({ event: 'epoch', ...at, epoch, epochs, metrics, timestamp: Date.now() });
        },
      };
    },
    fail(error, runId) {
      emit({
        event: 'error',
        ...(runId ? { runId } : {}),
        ...(isMenagerieError(error) ? { code: error.code } : {}),
        message: error instanceof Error ? error.message : String(error),
      });
    },
  };
}
