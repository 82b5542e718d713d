import { Arg, Ctx, FieldResolver, Float, Int, Query, Resolver, Root } from 'type-graphql';
import { isMenagerieError } from '../../core/errors.js';
import { getEmbeddingJob } from '../../serving/embedding-job.js';
import type { GraphQLContext } from '../context.js';
import { ModelVersion, toModelVersion } from '../model-version.js';
import { StageTransition, toStageTransition } from '../stage-transition.js';

@Resolver(() => ModelVersion)
export class ModelVersionResolver {
  @Query(() => ModelVersion, { nullable: true })
  async modelVersion(
    @Ctx() ctx: GraphQLContext,
    @Arg('name', () => String) name: string,
    @Arg('version', () => Int) version: number,
  ): Promise<ModelVersion | null> {
    try {
      return toModelVersion(await ctx.services.registry.getModelVersion(name, version));
    } catch (error) {
      if (
        isMenagerieError(error, 'MODEL_NOT_FOUND') ||
        isMenagerieError(error, 'MODEL_VERSION_NOT_FOUND')
      )
        return null;
      throw error;
    }
  }

  @FieldResolver(() => [StageTransition], {
    description: "This version's audit trail, oldest first.",
  })
  async transitions(
    @Root() version: ModelVersion,
    @Ctx() ctx: GraphQLContext,
  ): Promise<StageTransition[]> {
    const rows = await ctx.services.registry.getTransitions(version.name, version.version);
    return rows.map(toStageTransition);
  }

  @FieldResolver(() => String, {
    nullable: true,
    description:
      'Embeddings for similar-image search: PENDING, RUNNING, READY or FAILED; null if never started.',
  })
  async embeddingStatus(
    @Root() version: ModelVersion,
    @Ctx() ctx: GraphQLContext,
  ): Promise<string | null> {
    const job = await getEmbeddingJob(ctx.services.database.db, version);
    return job?.status ?? null;
  }

  @FieldResolver(() => Float, {
    nullable: true,
    description: 'Share of images embedded, 0 to 1; null if never started.',
  })
  async embeddingProgress(
    @Root() version: ModelVersion,
    @Ctx() ctx: GraphQLContext,
  ): Promise<number | null> {
    const job = await getEmbeddingJob(ctx.services.database.db, version);
    if (!job) return null;
    if (job.status === 'READY') return 1;
    return job.total > 0 ? job.done / job.total : 0;
  }
}
