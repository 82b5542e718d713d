import { CONFUSION_MATRIX_PNG } from '../tracking/run-evaluation.js';

/**
 * URLs the schema hands out for what is served outside GraphQL, by server/image-routes.ts,
 * server/run-artifact-routes.ts and server/evaluation-routes.ts. Relative, so they work
 * behind any origin or proxy.
 */
export const imageUrl = (imageId: number) => `/images/${imageId}`;

export const thumbnailUrl = (imageId: number, size: number) =>
  `/images/${imageId}/thumb?size=${size}`;

/** `Run.confusionMatrixUrl`. */
export const confusionMatrixUrl = (runId: string) =>
  `/runs/${runId}/artifacts/${CONFUSION_MATRIX_PNG}`;

/** `ModelEvaluation.confusionMatrixUrl` (server/evaluation-routes.ts). */
export const evaluationConfusionMatrixUrl = (evaluationId: string) =>
  `/evaluations/${evaluationId}/${CONFUSION_MATRIX_PNG}`;

/** An evaluation's worst error's image, by rank (1 = most confident mistake). */
export const evaluationErrorUrl = (evaluationId: string, rank: number) =>
  `/evaluations/${evaluationId}/errors/${rank}`;

export const evaluationErrorThumbnailUrl = (evaluationId: string, rank: number, size: number) =>
  `/evaluations/${evaluationId}/errors/${rank}/thumb?size=${size}`;
