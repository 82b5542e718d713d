import fs from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

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
 * A file of the run's model artifact, from the run's own artifact URI and a fixed name:
 * no caller's path reaches the file system. Null when the URI is not a local folder.
 */
export function modelArtifactFile(artifactUri: string, name: string): string | null {
  if (!artifactUri.startsWith('file:')) return null;
  return path.join(fileURLToPath(artifactUri), MODEL_ARTIFACT_PATH, name);
}

/**
 * Reads the evaluation the trainer wrote at the end of a run; null until it exists (the
 * run is still training, or no epoch completed) or when it does not have the expected shape.
 *
 * ```ts
 * const evaluation = await readRunEvaluation(run.artifactUri);
 * evaluation?.confusionMatrix; // [[48, 2], [1, 49]]
 * ```
 */
export async function readRunEvaluation(artifactUri: string): Promise<RunEvaluation | null> {
  const file = modelArtifactFile(artifactUri, EVALUATION_FILE);
  if (!file) return null;
  let raw: unknown;
  try {
    raw = JSON.parse(await fs.readFile(file, 'utf8'));
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
