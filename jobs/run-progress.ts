import type { RunStatus } from '../data/tables.js';

/**
 * One line of `menagerie train|tune|evaluate --progress-json` on stdout: how a job in a child
 * process tells its parent (the API server) what it is doing. Epochs and batches are
 * 0-based, as the trainer counts them (a metric's step is its epoch). `runId` is the run
 * the event is about; a tuning trial's events also name the tuning run as `parentRunId`.
 * Non-finite metric values travel as the strings `NaN`, `Infinity` and `-Infinity`.
 *
 * ```ts
 * import { parseJobEvent } from './jobs/run-progress.js';
 * parseJobEvent('{"event":"run","runId":"0123…","kind":"training"}'); // { event: 'run', … }
 * parseJobEvent('loading tfjs…'); // null: not a progress line
 * ```
 */
export type JobEvent =
  | { event: 'run'; runId: string; kind: 'training' | 'tuning' }
  | {
      event: 'batch';
      runId: string;
      parentRunId?: string;
      epoch: number;
      epochs: number;
      batch: number;
      batches: number;
      loss: number;
    }
  | {
      event: 'epoch';
      runId: string;
      parentRunId?: string;
      epoch: number;
      epochs: number;
      metrics: Record<string, number>;
      timestamp: number;
    }
  | {
      event: 'trial-start';
      runId: string;
      parentRunId: string;
      trialId: string;
      values: Record<string, string | number | boolean>;
    }
  | {
      event: 'trial-end';
      runId: string;
      parentRunId: string;
      trialId: string;
      status: 'COMPLETED' | 'FAILED';
      score?: number;
      error?: string;
    }
  | {
      /** The data are being prepared: backbone features computed, `done` of `total`. */
      event: 'prepare';
      runId: string;
      parentRunId?: string;
      stage: 'features';
      done: number;
      total: number;
    }
  | { event: 'end'; runId: string; status: Exclude<RunStatus, 'RUNNING'>; message?: string }
  /** `menagerie evaluate`: the evaluation exists (RUNNING); its id names the job. */
  | { event: 'evaluation'; evaluationId: string; name: string; version: number }
  /** Files of the evaluation's data looked at so far, of `total`. */
  | { event: 'evaluation-progress'; evaluationId: string; done: number; total: number }
  | { event: 'error'; runId?: string; code?: string; message: string };

/** JSON with non-finite numbers kept (as strings), one line. */
export function formatJobEvent(event: JobEvent): string {
  return JSON.stringify(event, (_key, value: unknown) =>
    typeof value === 'number' && !Number.isFinite(value) ? String(value) : value,
  );
}

const EVENTS = new Set([
  'run',
  'evaluation',
  'evaluation-progress',
  'prepare',
  'batch',
  'epoch',
  'trial-start',
  'trial-end',
  'end',
  'error',
]);
const NON_FINITE: Readonly<Record<string, number>> = {
  NaN: Number.NaN,
  Infinity: Number.POSITIVE_INFINITY,
  '-Infinity': Number.NEGATIVE_INFINITY,
};

/** A progress line back to an event; null for anything else the child printed. */
export function parseJobEvent(line: string): JobEvent | null {
  if (!line.startsWith('{')) return null;
  let value: unknown;
  try {
    value = JSON.parse(line);
  } catch {
    return null;
  }
  if (typeof value !== 'object' || value === null) return null;
  const event = value as { event?: unknown; metrics?: unknown; score?: unknown; loss?: unknown };
  if (typeof event.event !== 'string' || !EVENTS.has(event.event)) return null;
  const number = (v: unknown) => (typeof v === 'string' && v in NON_FINITE ? NON_FINITE[v] : v);
  if (typeof event.metrics === 'object' && event.metrics !== null) {
    event.metrics = Object.fromEntries(
      Object.entries(event.metrics).map(([k, v]) => [k, number(v)]),
    );
  }
  if ('score' in event) event.score = number(event.score);
  if ('loss' in event) event.loss = number(event.loss);
  return event as JobEvent;
}

/**
 * What subscribers to a run's progress receive: a job event made uniform. `epoch` and
 * `batch` count from 1 (epoch 3 of 10); metrics keep the tracking store's 0-based steps.
 */
export interface RunProgressUpdate {
  runId: string;
  /** The tuning run, for a trial's updates: subscribers to a tuning run get its trials'. */
  parentRunId: string | null;
  status: RunStatus;
  epoch: number | null;
  epochs: number | null;
  batch: number | null;
  batches: number | null;
  metrics: { key: string; value: number; step: number; timestamp: number }[];
  message: string | null;
  /** The last update of `runId`: its run ended. */
  final: boolean;
}

const TRIAL_STATUS = { COMPLETED: 'FINISHED', FAILED: 'FAILED' } as const;

/** The fields of an update that says nothing about epochs, batches or metrics. */
function noProgress() {
  return {
    parentRunId: null,
    epoch: null,
    epochs: null,
    batch: null,
    batches: null,
    metrics: [],
  };
}

/**
 * A run's last update: its end status and message, no progress. What the job runners send
 * when a run's process exits.
 *
 * ```ts
 * publish(finalRunUpdate(runId, 'KILLED', 'cancelled'));
 * ```
 */
export function finalRunUpdate(
  runId: string,
  status: RunStatus,
  message: string | null,
): RunProgressUpdate {
  return { ...noProgress(), runId, status, message, final: true };
}

/** A job event as a progress update; null for events subscribers do not see. */
export function toProgressUpdate(event: JobEvent): RunProgressUpdate | null {
  const base = {
    ...noProgress(),
    status: 'RUNNING' as RunStatus,
    message: null,
    final: false,
  };
  switch (event.event) {
    case 'run':
      return { ...base, runId: event.runId, message: `${event.kind} started` };
    case 'batch':
      return {
        ...base,
        runId: event.runId,
        parentRunId: event.parentRunId ?? null,
        epoch: event.epoch + 1,
        epochs: event.epochs,
        batch: event.batch + 1,
        batches: event.batches,
        metrics: [
          { key: 'batch_loss', value: event.loss, step: event.epoch, timestamp: Date.now() },
        ],
      };
    case 'epoch':
      return {
        ...base,
        runId: event.runId,
        parentRunId: event.parentRunId ?? null,
        epoch: event.epoch + 1,
        epochs: event.epochs,
        metrics: Object.entries(event.metrics).map(([key, value]) => ({
          key,
          value,
          step: event.epoch,
          timestamp: event.timestamp,
        })),
      };
    case 'prepare':
      return {
        ...base,
        runId: event.runId,
        parentRunId: event.parentRunId ?? null,
        message: `computing backbone features: ${event.done} of ${event.total}`,
      };
    case 'trial-start':
      return {
        ...base,
        runId: event.runId,
        parentRunId: event.parentRunId,
        message: `trial ${event.trialId} started: ${JSON.stringify(event.values)}`,
      };
    case 'trial-end':
      return {
        ...base,
        runId: event.runId,
        parentRunId: event.parentRunId,
        status: TRIAL_STATUS[event.status],
        message:
          `trial ${event.trialId} ${event.status}` +
          (event.score !== undefined ? `: score ${event.score}` : '') +
          (event.error ? `: ${event.error}` : ''),
        final: event.runId !== event.parentRunId,
      };
    case 'end':
    case 'error':
      // The server sends a run's final update when its process exits, from the database.
      return null;
    case 'evaluation':
    case 'evaluation-progress':
      // About an evaluation, not a run (jobs/evaluation-progress.ts).
      return null;
  }
}
