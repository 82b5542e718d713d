import { Field, Float, ObjectType, registerEnumType } from 'type-graphql';
import { Image } from './image.js';

/** How similar images were found: GraphQL names for similar-images.ts's methods. */
export const SimilarMethodEnum = { EMBEDDING: 'embedding', RANDOM: 'random' } as const;
export type SimilarMethod = (typeof SimilarMethodEnum)[keyof typeof SimilarMethodEnum];

/** Where similar images are looked for: GraphQL names for similar-images.ts's spaces. */
export const SimilarSpaceEnum = { FEATURES: 'features', MODEL_VERSION: 'model-version' } as const;
export type SimilarSpaceName = (typeof SimilarSpaceEnum)[keyof typeof SimilarSpaceEnum];

registerEnumType(SimilarSpaceEnum, {
  name: 'SimilarSpace',
  description:
    "FEATURES: the pretrained backbone's feature space (MobileNetV2 ×1.4, ImageNet), the same " +
    "whichever classifier is champion. MODEL_VERSION: the serving version's own embedding space.",
});

registerEnumType(SimilarMethodEnum, {
  name: 'SimilarMethod',
  description:
    "EMBEDDING: nearest by cosine distance in the serving version's embedding space. " +
    'RANDOM: images of the label picked at random, while embeddings are not ready.',
});

@ObjectType()
export class SimilarImage {
  @Field(() => Image)
  image!: Image;

  @Field(() => Float, { nullable: true, description: 'Cosine distance; null for RANDOM.' })
  distance!: number | null;
}

@ObjectType({ description: 'Images like a query image, nearest first.' })
export class SimilarImages {
  @Field(() => SimilarMethodEnum)
  method!: SimilarMethod;

  @Field(() => SimilarSpaceEnum, {
    nullable: true,
    description:
      'The space searched (null for RANDOM): the one asked for, or the other while it is not ready.',
  })
  space!: SimilarSpaceName | null;

  @Field(() => String, {
    nullable: true,
    description: 'Why RANDOM was used (embeddings still computing, failed, no model…).',
  })
  reason!: string | null;

  @Field(() => [SimilarImage])
  images!: SimilarImage[];
}
