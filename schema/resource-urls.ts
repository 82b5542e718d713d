import { CONFUSION_MATRIX_PNG } from '../tracking/run-evaluation.js';

/**
 * URLs the schema hands out for what is served outside GraphQL, by server/image-routes.ts
 * and server/run-artifact-routes.ts. Relative, so they work behind any origin or proxy.
 */
export const imageUrl = (imageId: number) => `/images/${imageId}`;

export const thumbnailUrl = (imageId: number, size: number) =>
  `/images/${imageId}/thumb?size=${size}`;

/** `Run.confusionMatrixUrl`. */
export const confusionMatrixUrl = (runId: string) =>
  `/runs/${runId}/artifacts/${CONFUSION_MATRIX_PNG}`;
