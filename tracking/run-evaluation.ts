/** What a run's `model/evaluation.json` says about its best epoch on the val split. */
export interface RunEvaluation {
  labels: string[];
  /** `confusionMatrix[true][predicted]`, in label order. */
  confusionMatrix: number[][];
  perClass: { label: string; precision: number; recall: number; f1: number; support: number }[];
}

/** The run's artifact folder holds the model under this path. */
export const MODEL_ARTIFACT_PATH = 'model';

/** The file names the trainer writes beside the model. */
export const EVALUATION_FILE = 'evaluation.json';
export const CONFUSION_MATRIX_PNG = 'confusion_matrix.png';

/**
 * Reads the evaluation the trainer wrote at the end of a run; null until it exists (the
 * run is still training, or no epoch completed) or when it does not have the expected shape.
 * `read` fetches a file of the run's artifacts (`TrackingStore.readArtifact`), so the
 * evaluation is found in whichever store holds the run.
 *
 * ```ts
 * const evaluation = await readRunEvaluation((file) => tracking.readArtifact(run.id, file));
 * evaluation?.confusionMatrix; // [[48, 2], [1, 49]]
 * ```
 */
export async function readRunEvaluation(
  read: (artifactPath: string) => Promise<Buffer | null>,
): Promise<RunEvaluation | null> {
  let raw: unknown;
  try {
    const bytes = await read(`${MODEL_ARTIFACT_PATH}/${EVALUATION_FILE}`);
    if (!bytes) return null;
    raw = JSON.parse(bytes.toString('utf8'));
  } catch {
    return null;
  }
  return isEvaluation(raw) ? raw : null;
}

function isEvaluation(value: unknown): value is RunEvaluation {
  if (typeof value !== 'object' || value === null) return false;
  const v = value as Partial<Record<keyof RunEvaluation, unknown>>;
  const n = Array.isArray(v.labels) ? v.labels.length : -1;
  return (
    Array.isArray(v.labels) &&
    v.labels.every((l) => typeof l === 'string') &&
    Array.isArray(v.confusionMatrix) &&
    v.confusionMatrix.length === n &&
    v.confusionMatrix.every(
      (row) => Array.isArray(row) && row.length === n && row.every((c) => Number.isSafeInteger(c)),
    ) &&
    Array.isArray(v.perClass) &&
    v.perClass.every(
      (c: unknown) =>
        typeof c === 'object' &&
        c !== null &&
        typeof (c as { label?: unknown }).label === 'string' &&
        ['precision', 'recall', 'f1', 'support'].every(
          (k) => typeof (c as Record<string, unknown>)[k] === 'number',
        ),
    )
  );
}
