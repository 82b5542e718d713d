import type { EvaluationStatus } from '../data/tables.js';
import type { ModelEvaluation } from '../registry/model-evaluations.js';
import type { JobEvent } from './run-progress.js';

/**
 * What subscribers to an evaluation's progress receive: how many files of its data have
 * been looked at, and last its final status (read from the database when the job exits).
 */
export interface EvaluationProgressUpdate {
  evaluationId: string;
  status: EvaluationStatus;
  /** Files looked at so far; null when not known (the final update reads the row). */
  done: number | null;
  total: number | null;
  message: string | null;
  /** The last update: the evaluation ended. */
  final: boolean;
}

/** A job event as an evaluation progress update; null for events about runs. */
export function toEvaluationUpdate(event: JobEvent): EvaluationProgressUpdate | null {
  switch (event.event) {
    case 'evaluation':
      return {
        evaluationId: event.evaluationId,
        status: 'RUNNING',
        done: 0,
        total: null,
        message: `evaluating ${event.name} version ${event.version}`,
        final: false,
      };
    case 'evaluation-progress':
      return {
        evaluationId: event.evaluationId,
        status: 'RUNNING',
        done: event.done,
        total: event.total,
        message: null,
        final: false,
      };
    default:
      return null;
  }
}

/** An evaluation as it stands, as a progress update (the first one a subscriber gets). */
export function evaluationSnapshot(evaluation: ModelEvaluation): EvaluationProgressUpdate {
  return {
    evaluationId: evaluation.id,
    status: evaluation.status,
    done: evaluation.done,
    total: evaluation.total,
    message: evaluation.error,
    final: evaluation.status !== 'RUNNING',
  };
}
