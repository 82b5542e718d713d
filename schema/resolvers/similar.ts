import type { SimilarResult } from '../../serving/similar-images.js';
import type { GraphQLContext } from '../context.js';
import { toImage } from '../image.js';
import type { SimilarImages } from '../similar-images.js';

/** similar-images.ts's answer with each image looked up (one that vanished since is left out). */
export async function toSimilarImages(
  ctx: GraphQLContext,
  result: SimilarResult,
): Promise<SimilarImages> {
  const rows = await Promise.all(result.images.map((s) => ctx.services.images.get(s.imageId)));
  return {
    method: result.method,
    space: result.space,
    reason: result.reason ?? null,
    images: result.images.flatMap((s, i) => {
      const row = rows[i];
      return row ? [{ image: toImage(row), distance: s.distance }] : [];
    }),
  };
}
