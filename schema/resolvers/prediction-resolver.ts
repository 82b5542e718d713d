import GraphQLUpload from 'graphql-upload/GraphQLUpload.mjs';
import type { FileUpload } from 'graphql-upload/processRequest.mjs';
import { Arg, Ctx, FieldResolver, ID, Int, Mutation, Query, Resolver, Root } from 'type-graphql';
import { MenagerieError } from '../../core/errors.js';
import { Access } from '../access.js';
import type { GraphQLContext } from '../context.js';
import { parseId } from '../ids.js';
import { Image, toImage } from '../image.js';
import { Prediction, toPrediction } from '../prediction.js';
import { ServingInfo } from '../serving-info.js';
import { SimilarImages, SimilarSpaceEnum, type SimilarSpaceName } from '../similar-images.js';
import { readUpload } from '../upload.js';
import { toSimilarImages } from './similar.js';

const DEFAULT_SIMILAR = 8;

function checkTopK(topK: number | null): number | null {
  if (topK !== null && topK < 1)
    throw new MenagerieError('BAD_USER_INPUT', `topK should be 1 or more, got ${topK}`);
  return topK;
}

@Resolver(() => Prediction)
export class PredictionResolver {
  @Query(() => ServingInfo, { description: 'The model version that answers predict, if any.' })
  async serving(@Ctx() ctx: GraphQLContext): Promise<ServingInfo> {
    const info = await ctx.services.serving.info();
    return { modelName: ctx.services.serving.modelName, ...info };
  }

  @Access('public')
  @Mutation(() => Prediction, {
    description:
      'Classifies an uploaded JPEG, PNG or WebP (sniffed from its bytes) with the champion. ' +
      'No token needed. MODEL_NOT_SERVING while there is no champion.',
  })
  async predict(
    @Ctx() ctx: GraphQLContext,
    @Arg('file', () => GraphQLUpload) file: Promise<FileUpload>,
    @Arg('topK', () => Int, {
      nullable: true,
      defaultValue: 3,
      description: 'How many classes `probabilities` lists; null for all.',
    })
    topK: number | null,
  ): Promise<Prediction> {
    checkTopK(topK);
    const bytes = await readUpload(file);
    return toPrediction(await ctx.services.predictions.predict(bytes), topK);
  }

  @Access('public')
  @Mutation(() => [Prediction], {
    description: 'Classifies several uploads in shared forward passes; no token needed.',
  })
  async predictBatch(
    @Ctx() ctx: GraphQLContext,
    @Arg('files', () => [GraphQLUpload]) files: Promise<FileUpload>[],
    @Arg('topK', () => Int, { nullable: true, defaultValue: 3 }) topK: number | null,
  ): Promise<Prediction[]> {
    checkTopK(topK);
    const uploads = await Promise.all(files.map((file) => readUpload(file)));
    const recorded = await ctx.services.predictions.predictBatch(uploads);
    return recorded.map((p) => toPrediction(p, topK));
  }

  @Mutation(() => Image, {
    description:
      "Adds a prediction's upload to the data set with the correct label (split train). " +
      'If those bytes are already an image, that image is relabelled (its split kept). ' +
      'Submitting again replaces the earlier feedback.',
  })
  async submitFeedback(
    @Ctx() ctx: GraphQLContext,
    @Arg('predictionId', () => ID) predictionId: string,
    @Arg('correctLabel', () => String) correctLabel: string,
  ): Promise<Image> {
    const { image, added } = await ctx.services.predictions.submitFeedback(
      parseId(predictionId, 'predictionId'),
      correctLabel,
    );
    if (added) {
      ctx.services.events.publish('imageAdded', image);
      ctx.services.serving.imagesAdded();
    }
    return toImage(image);
  }

  @FieldResolver(() => SimilarImages, {
    description:
      'Data-set images like the upload, nearest first, in the pretrained feature space (or the ' +
      "answering version's embedding space); the other space while the one asked for is not " +
      'ready, and random images of the label (method RANDOM) while neither is.',
  })
  async similar(
    @Root() prediction: Prediction,
    @Ctx() ctx: GraphQLContext,
    @Arg('k', () => Int, { defaultValue: DEFAULT_SIMILAR }) k: number,
    @Arg('sameLabel', () => Boolean, { defaultValue: true }) sameLabel: boolean,
    @Arg('space', () => SimilarSpaceEnum, { defaultValue: SimilarSpaceEnum.FEATURES })
    space: SimilarSpaceName,
  ): Promise<SimilarImages> {
    const result = await ctx.services.predictions.similar(prediction.recorded, {
      k,
      sameLabel,
      space,
    });
    return toSimilarImages(ctx, result);
  }
}

@Resolver(() => Image)
export class ImageSimilarResolver {
  @FieldResolver(() => SimilarImages, {
    description:
      'Other images like this one, nearest first, in the pretrained feature space (or the ' +
      "serving version's embedding space); the other space while the one asked for is not " +
      'ready, and random images of its label (method RANDOM) while neither is.',
  })
  async similar(
    @Root() image: Image,
    @Ctx() ctx: GraphQLContext,
    @Arg('k', () => Int, { defaultValue: DEFAULT_SIMILAR }) k: number,
    @Arg('sameLabel', () => Boolean, { defaultValue: true }) sameLabel: boolean,
    @Arg('space', () => SimilarSpaceEnum, { defaultValue: SimilarSpaceEnum.FEATURES })
    space: SimilarSpaceName,
  ): Promise<SimilarImages> {
    const result = await ctx.services.serving.similarToImage(image.id, { k, sameLabel, space });
    return toSimilarImages(ctx, result);
  }
}
