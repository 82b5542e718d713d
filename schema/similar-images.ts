import { Field, Float, ObjectType, registerEnumType } from 'type-graphql';
import { Image } from './image.js';

/** How similar images were found: GraphQL names for similar-images.ts's methods. */
export const SimilarMethodEnum = { EMBEDDING: 'embedding', RANDOM: 'random' } as const;
export type SimilarMethod = (typeof SimilarMethodEnum)[keyof typeof SimilarMethodEnum];

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

  @Field(() => String, {
    nullable: true,
    description: 'Why RANDOM was used (embeddings still computing, failed, no model…).',
  })
  reason!: string | null;

  @Field(() => [SimilarImage])
  images!: SimilarImage[];
}
