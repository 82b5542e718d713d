import { Arg, Ctx, FieldResolver, ID, Int, Mutation, Query, Resolver, Root } from 'type-graphql';
import { isMenagerieError } from '../../core/errors.js';
import { MODEL_STAGES, type ModelStage } from '../../data/tables.js';
import { ACTIVE_STAGES, CHAMPION } from '../../registry/model-names.js';
import type { ChangeOptions } from '../../registry/model-registry.js';
import { registerRunModel } from '../../registry/register-model.js';
import { checkPageSize, toConnection, type ConnectionValue } from '../connection.js';
import type { GraphQLContext } from '../context.js';
import { StageNameEnum } from '../model-stage.js';
import { ModelVersion, ModelVersionConnection, toModelVersion } from '../model-version.js';
import { RegisteredModel, toRegisteredModel } from '../registered-model.js';
import { StageTransition, toStageTransition } from '../stage-transition.js';

/** null for "no such model/version", so a lookup query answers null instead of failing. */
async function orNull<T>(lookup: Promise<T>): Promise<T | null> {
  try {
    return await lookup;
  } catch (error) {
    if (
      isMenagerieError(error, 'MODEL_NOT_FOUND') ||
      isMenagerieError(error, 'MODEL_VERSION_NOT_FOUND')
    )
      return null;
    throw error;
  }
}

/** Who the audit trail names for a change made through the API. */
const changeBy = (ctx: GraphQLContext, comment?: string | null): ChangeOptions => ({
  user: `api:${ctx.role ?? 'anonymous'}`,
  ...(comment != null && { comment }),
});

/** The cursor registry.listVersions takes: versions after it are older. */
const versionCursor = (v: { version: number }) =>
  Buffer.from(`version:${v.version}`).toString('base64url');

@Resolver(() => RegisteredModel)
export class RegistryResolver {
  @Query(() => [RegisteredModel], { description: 'Every registered model, by name.' })
  async registeredModels(@Ctx() ctx: GraphQLContext): Promise<RegisteredModel[]> {
    const models: RegisteredModel[] = [];
    let after: string | null = null;
    do {
      const page = await ctx.services.registry.listRegisteredModels({ first: 1000, after });
      models.push(...page.items.map(toRegisteredModel));
      after = page.hasNextPage ? page.endCursor : null;
    } while (after !== null);
    return models;
  }

  @Query(() => RegisteredModel, { nullable: true })
  async registeredModel(
    @Ctx() ctx: GraphQLContext,
    @Arg('name', () => String) name: string,
  ): Promise<RegisteredModel | null> {
    const model = await orNull(ctx.services.registry.getRegisteredModel(name));
    return model ? toRegisteredModel(model) : null;
  }

  @FieldResolver(() => [ModelVersion], {
    description: 'The newest version in each stage (None, Staging, Production, Archived).',
  })
  async latestVersions(
    @Root() model: RegisteredModel,
    @Ctx() ctx: GraphQLContext,
  ): Promise<ModelVersion[]> {
    const pages = await Promise.all(
      MODEL_STAGES.map((stage) =>
        ctx.services.registry.listVersions(model.name, { stage, first: 1 }),
      ),
    );
    return pages
      .flatMap((page) => page.items)
      .sort((a, b) => b.version - a.version)
      .map(toModelVersion);
  }

  @FieldResolver(() => ModelVersionConnection, { description: 'Newest first.' })
  async versions(
    @Root() model: RegisteredModel,
    @Ctx() ctx: GraphQLContext,
    @Arg('first', () => Int, { defaultValue: 50, description: 'Page size, 1 to 1000.' })
    first: number,
    @Arg('after', () => String, { nullable: true }) after: string | null,
  ): Promise<ConnectionValue<ModelVersion>> {
    checkPageSize(first);
    const [page, count] = await Promise.all([
      ctx.services.registry.listVersions(model.name, { first, after }),
      ctx.services.database.db
        .selectFrom('model_versions')
        .innerJoin('registered_models', 'registered_models.id', 'model_versions.model_id')
        .where('registered_models.name', '=', model.name)
        .select((eb) => eb.fn.countAll<number>().as('n'))
        .executeTakeFirstOrThrow(),
    ]);
    return toConnection(
      { rows: page.items, hasNextPage: page.hasNextPage, totalCount: Number(count.n) },
      toModelVersion,
      versionCursor,
    );
  }

  @FieldResolver(() => ModelVersion, {
    nullable: true,
    description: 'The version the `champion` alias names: what serving follows.',
  })
  async champion(
    @Root() model: RegisteredModel,
    @Ctx() ctx: GraphQLContext,
  ): Promise<ModelVersion | null> {
    const entry = model.aliases.find((a) => a.alias === CHAMPION);
    if (!entry) return null;
    const version = await orNull(ctx.services.registry.getModelVersion(model.name, entry.version));
    return version ? toModelVersion(version) : null;
  }

  @FieldResolver(() => [StageTransition], { description: 'The audit trail, oldest first.' })
  async transitions(
    @Root() model: RegisteredModel,
    @Ctx() ctx: GraphQLContext,
  ): Promise<StageTransition[]> {
    return (await ctx.services.registry.getTransitions(model.name)).map(toStageTransition);
  }

  @Mutation(() => ModelVersion, {
    description:
      "Registers a finished run's model as a new READY version (created on first use), " +
      'after loading it through its plugin; its embeddings start computing in the background.',
  })
  async registerModel(
    @Ctx() ctx: GraphQLContext,
    @Arg('runId', () => ID) runId: string,
    @Arg('name', () => String) name: string,
  ): Promise<ModelVersion> {
    const { registry, tracking, plugins, serving } = ctx.services;
    const version = await registerRunModel(registry, tracking, plugins, {
      name,
      runId: String(runId),
      user: changeBy(ctx).user!,
    });
    await serving.ensureEmbeddings({ name: version.name, version: version.version });
    return toModelVersion(version);
  }

  @Mutation(() => ModelVersion, {
    description:
      'Moves a version to a stage. archiveExisting (moving to Staging or Production) ' +
      "archives the stage's other versions in the same transaction.",
  })
  async transitionStage(
    @Ctx() ctx: GraphQLContext,
    @Arg('name', () => String) name: string,
    @Arg('version', () => Int) version: number,
    @Arg('stage', () => StageNameEnum) stage: ModelStage,
    @Arg('archiveExisting', () => Boolean, { nullable: true, defaultValue: true })
    archiveExisting: boolean | null,
    @Arg('comment', () => String, { nullable: true }) comment: string | null,
  ): Promise<ModelVersion> {
    // MLflow ignores archive_existing_versions for None and Archived; the default must too.
    const archive = archiveExisting === true && ACTIVE_STAGES.includes(stage);
    const moved = await ctx.services.registry.transitionStage(name, version, stage, {
      ...changeBy(ctx, comment),
      archiveExisting: archive,
    });
    return toModelVersion(moved);
  }

  @Mutation(() => ModelVersion, {
    description: 'Points an alias at a READY version; `champion` moves only with promoteChampion.',
  })
  async setAlias(
    @Ctx() ctx: GraphQLContext,
    @Arg('name', () => String) name: string,
    @Arg('alias', () => String) alias: string,
    @Arg('version', () => Int) version: number,
  ): Promise<ModelVersion> {
    return toModelVersion(
      await ctx.services.registry.setAlias(name, alias, version, changeBy(ctx)),
    );
  }

  @Mutation(() => Boolean, {
    description:
      'Removes an alias. Removing `champion` leaves the server serving the version it has.',
  })
  async deleteAlias(
    @Ctx() ctx: GraphQLContext,
    @Arg('name', () => String) name: string,
    @Arg('alias', () => String) alias: string,
  ): Promise<boolean> {
    await ctx.services.registry.deleteAlias(name, alias, changeBy(ctx));
    await ctx.services.serving.championMoved(name);
    return true;
  }

  @Mutation(() => ModelVersion, {
    description:
      'In one transaction: `champion` moves to the version, it becomes Production and the ' +
      'previous Production versions are Archived. The server answers predict with it from ' +
      'the next request; its embeddings start computing if they are not ready.',
  })
  async promoteChampion(
    @Ctx() ctx: GraphQLContext,
    @Arg('name', () => String) name: string,
    @Arg('version', () => Int) version: number,
    @Arg('comment', () => String, { nullable: true }) comment: string | null,
  ): Promise<ModelVersion> {
    const { registry, serving } = ctx.services;
    const result = await registry.promoteChampion(name, version, changeBy(ctx, comment));
    // Loading the served model's new champion also starts its embeddings.
    await serving.championMoved(name);
    await serving.ensureEmbeddings({ name, version });
    return toModelVersion(result.version);
  }
}
