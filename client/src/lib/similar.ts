/** How the dashboard names where similar images came from (SimilarImages.method/space). */

type Method = 'EMBEDDING' | 'RANDOM';
type Space = 'FEATURES' | 'MODEL_VERSION' | null;

/** The short badge: which space answered, or that the images are a random pick. */
export function similarBadge(similar: { method: Method; space: Space }): string {
  if (similar.method === 'RANDOM') return 'random sample';
  return similar.space === 'FEATURES' ? 'by pretrained features' : 'by model embedding';
}

/** The badge's tooltip: what that space is. */
export function similarTitle(space: Space): string {
  if (space === 'FEATURES')
    return 'Nearest in the pretrained MobileNetV2 feature space: the same whichever model is champion';
  if (space === 'MODEL_VERSION')
    return 'Nearest in the serving model version’s own embedding space';
  return 'No embedding space is ready: images of the predicted label, picked at random';
}
