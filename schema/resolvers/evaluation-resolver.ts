import {
  Arg,
  Ctx,
  FieldResolver,
  ID,
  Int,
  Mutation,
  Query,
  Resolver,
  Root,
  Subscription,
} from 'type-graphql';
import { isMenagerieError, MenagerieError } from '../../core/errors.js';
import { clampThumbnailSize, DEFAULT_THUMBNAIL_SIZE } from '../../data/thumbnail-cache.js';
import {
  evaluationSnapshot,
  type EvaluationProgressUpdate,
} from '../../jobs/evaluation-progress.js';
import { modelUriOf } from '../../registry/model-uri.js';
import type { GraphQLContext, MenagerieServices } from '../context.js';
import {
  EvaluateModelInput,
  EvaluationError,
  EvaluationProgress,
  ModelEvaluation,
  toEvaluationProgress,
  toModelEvaluation,
} from '../evaluation.js';
import { Image, toImage } from '../image.js';
import { ModelVersion } from '../model-version.js';
import { progressStream, stillExiting } from '../progress-stream.js';
import { evaluationErrorThumbnailUrl } from '../resource-urls.js';

@Resolver(() => ModelEvaluation)
export class EvaluationResolver {
  @Query(() => ModelEvaluation, { nullable: true })
  async evaluation(
    @Ctx() ctx: GraphQLContext,
    @Arg('id', () => ID) id: string,
  ): Promise<ModelEvaluation | null> {
    try {
      return toModelEvaluation(await ctx.services.evaluations.get(id));
    } catch (error) {
      if (isMenagerieError(error, 'EVALUATION_NOT_FOUND')) return null;
      throw error;
    }
  }

  @Mutation(() => ModelEvaluation, {
    description:
      'Evaluates a model version on a split or on a folder inside the ingest roots, in a child ' +
      'process (`menagerie evaluate`); returns the evaluation once it exists (RUNNING). Follow ' +
      'it with `evaluationProgress`. JOB_LIMIT while the server runs its maximum of jobs.',
  })
  async evaluateModel(
    @Ctx() ctx: GraphQLContext,
    @Arg('input', () => EvaluateModelInput) input: EvaluateModelInput,
  ): Promise<ModelEvaluation> {
    const split = input.split ?? null;
    const folder = input.folder ?? null;
    if ((split === null) === (folder === null)) {
      throw new MenagerieError(
        'BAD_USER_INPUT',
        'say what to evaluate on: `split` or `folder` (one of them)',
      );
    }
    // Resolved here, so a bad reference fails now and a moving alias cannot change the job.
    const version = await ctx.services.registry.resolveModelUri(modelUriOf(input.model));
    const id = await ctx.services.jobs.startEvaluation({
      model: `models:/${version.name}/${version.version}`,
      data:
        split !== null ? { split } : { folder: await ctx.services.ingest.resolveFolder(folder!) },
      user: `api:${ctx.role ?? 'anonymous'}`,
    });
    return toModelEvaluation(await ctx.services.evaluations.get(id));
  }

  @Subscription(() => EvaluationProgress, {
    description:
      "An evaluation's progress: first its current state, then files looked at as they are; " +
      'the stream ends after the update with its final status.',
    subscribe: ({ args, context }) =>
      evaluationProgressStream((context as GraphQLContext).services, String(args['id'])),
  })
  evaluationProgress(
    @Root() update: EvaluationProgressUpdate,
    @Arg('id', () => ID) _id: string,
  ): EvaluationProgress {
    return toEvaluationProgress(update);
  }
}

@Resolver(() => EvaluationError)
export class EvaluationErrorResolver {
  @FieldResolver(() => String, {
    description: 'A WebP thumbnail of the image; `size` is rounded up to 64, 128, 256 or 512.',
  })
  thumbnailUrl(
    @Root() error: EvaluationError,
    @Arg('size', () => Int, { defaultValue: DEFAULT_THUMBNAIL_SIZE }) size: number,
  ): string {
    return evaluationErrorThumbnailUrl(error.evaluationId, error.rank, clampThumbnailSize(size));
  }

  @FieldResolver(() => Image, {
    nullable: true,
    description: 'The catalogue image, when the evaluation ran on a split and it still exists.',
  })
  async image(@Root() error: EvaluationError, @Ctx() ctx: GraphQLContext): Promise<Image | null> {
    if (error.imageId === null) return null;
    const row = await ctx.services.images.get(error.imageId);
    return row ? toImage(row) : null;
  }
}

@Resolver(() => ModelVersion)
export class ModelVersionEvaluationResolver {
  @FieldResolver(() => [ModelEvaluation], {
    description: "This version's evaluations, newest first.",
  })
  async evaluations(
    @Root() version: ModelVersion,
    @Ctx() ctx: GraphQLContext,
  ): Promise<ModelEvaluation[]> {
    return (await ctx.services.evaluations.list(version.name, version.version)).map(
      toModelEvaluation,
    );
  }
}

/**
 * The `evaluationProgress(id)` stream: the evaluation as it stands, then its updates until
 * the final one. Throws EVALUATION_NOT_FOUND for an unknown id.
 */
async function evaluationProgressStream(
  services: Pick<MenagerieServices, 'events' | 'evaluations' | 'jobs'>,
  id: string,
): Promise<AsyncIterableIterator<EvaluationProgressUpdate>> {
  // Subscribe before reading the snapshot, so no update falls between the two.
  const updates = services.events.subscribe('evaluationProgress');
  let snapshot: EvaluationProgressUpdate;
  try {
    snapshot = evaluationSnapshot(await services.evaluations.get(id));
    if (snapshot.final && stillExiting(services.jobs, id)) snapshot = { ...snapshot, final: false };
  } catch (error) {
    await updates.return?.();
    throw error;
  }
  return progressStream(updates, snapshot, {
    concerns: (u) => u.evaluationId === id,
    ends: (u) => u.final,
  });
}
