import { Arg, Ctx, FieldResolver, ID, Int, Query, Resolver, Root } from 'type-graphql';
import { isMenagerieError, MenagerieError } from '../../core/errors.js';
import { latestMetrics, registeredVersionsOfRun } from '../../tracking/run-details.js';
import { readRunEvaluation, type RunEvaluation } from '../../tracking/run-evaluation.js';
import { searchRunPage } from '../../tracking/run-page.js';
import type { RunSearch } from '../../tracking/run-search.js';
import type { TrackingStore } from '../../tracking/tracking-store.js';
import { confusionMatrixUrl } from '../resource-urls.js';
import type { ConnectionValue } from '../connection.js';
import type { GraphQLContext } from '../context.js';
import { Experiment, toExperiment } from '../experiment.js';
import { Param, Tag, toKeyValues } from '../key-value.js';
import { ModelVersionRef } from '../model-version-ref.js';
import { ModelVersion } from '../model-version.js';
import {
  ClassMetrics,
  ConfusionMatrix,
  Metric,
  Run,
  RunConnection,
  toMetric,
  toRun,
} from '../run.js';

@Resolver(() => Run)
export class RunResolver {
  @Query(() => RunConnection, {
    description:
      "Runs matching an MLflow-style filter (`metrics.val_accuracy > 0.9 AND params.optimizer = 'adam'`), " +
      'newest first unless `orderBy` (`metrics.val_accuracy DESC`) says otherwise.',
  })
  async runs(
    @Ctx() ctx: GraphQLContext,
    @Arg('experiment', () => String, { nullable: true, description: 'Experiment name.' })
    experiment: string | null,
    @Arg('filter', () => String, { nullable: true }) filter: string | null,
    @Arg('orderBy', () => [String], { nullable: true }) orderBy: string[] | null,
    @Arg('first', () => Int, { defaultValue: 50, description: 'Page size, 1 to 1000.' })
    first: number,
    @Arg('after', () => String, { nullable: true }) after: string | null,
  ): Promise<ConnectionValue<Run>> {
    let experimentIds: number[] | undefined;
    if (experiment != null) {
      const found = await ctx.services.tracking.getExperimentByName(experiment);
      if (!found) {
        throw new MenagerieError(
          'EXPERIMENT_NOT_FOUND',
          `no experiment is named '${experiment.slice(0, 100)}'`,
        );
      }
      experimentIds = [found.id];
    }
    return runPage(ctx, {
      ...(experimentIds && { experimentIds }),
      filter,
      orderBy,
      first,
      after,
    });
  }

  @Query(() => Run, { nullable: true, description: 'A run by id; null when there is none.' })
  async run(@Ctx() ctx: GraphQLContext, @Arg('id', () => ID) id: string): Promise<Run | null> {
    try {
      return toRun(await ctx.services.tracking.getRun(id));
    } catch (error) {
      if (isMenagerieError(error, 'RUN_NOT_FOUND')) return null;
      throw error;
    }
  }

  @FieldResolver(() => Experiment)
  async experiment(@Root() run: Run, @Ctx() ctx: GraphQLContext): Promise<Experiment> {
    return toExperiment(await ctx.services.tracking.getExperiment(run.stored.experimentId));
  }

  @FieldResolver(() => [Run], { description: 'Tuning trials, oldest first.' })
  async children(@Root() run: Run, @Ctx() ctx: GraphQLContext): Promise<Run[]> {
    return (await ctx.services.tracking.listChildRuns(run.id)).map(toRun);
  }

  @FieldResolver(() => [Param], { description: 'Hyperparameters and settings, by key.' })
  params(@Root() run: Run): Param[] {
    return toKeyValues(run.stored.params);
  }

  @FieldResolver(() => [Tag])
  tags(@Root() run: Run): Tag[] {
    return toKeyValues(run.stored.tags);
  }

  @FieldResolver(() => [Metric], { description: 'The latest value of each metric, by key.' })
  async latestMetrics(@Root() run: Run, @Ctx() ctx: GraphQLContext): Promise<Metric[]> {
    return (await latestMetrics(ctx.services.database.db, run.id)).map(toMetric);
  }

  @FieldResolver(() => [Metric], { description: 'Every value logged for `key`, by step.' })
  async metricHistory(
    @Root() run: Run,
    @Ctx() ctx: GraphQLContext,
    @Arg('key', () => String) key: string,
  ): Promise<Metric[]> {
    return (await ctx.services.tracking.getMetricHistory(run.id, key)).map(toMetric);
  }

  @FieldResolver(() => [String], { description: 'Keys of every metric logged.' })
  async metricKeys(@Root() run: Run, @Ctx() ctx: GraphQLContext): Promise<string[]> {
    return (await latestMetrics(ctx.services.database.db, run.id)).map((m) => m.key);
  }

  @FieldResolver(() => ConfusionMatrix, {
    nullable: true,
    description: 'On the val split at the best epoch; null until training has ended.',
  })
  async confusionMatrix(
    @Root() run: Run,
    @Ctx() ctx: GraphQLContext,
  ): Promise<ConfusionMatrix | null> {
    const evaluation = await evaluationOf(run, ctx.services.tracking);
    return evaluation && { labels: evaluation.labels, counts: evaluation.confusionMatrix };
  }

  @FieldResolver(() => [ClassMetrics], { description: 'Empty until training has ended.' })
  async classMetrics(@Root() run: Run, @Ctx() ctx: GraphQLContext): Promise<ClassMetrics[]> {
    return (await evaluationOf(run, ctx.services.tracking))?.perClass ?? [];
  }

  @FieldResolver(() => String, {
    nullable: true,
    description: 'Where the confusion matrix PNG is served (GET); null until it exists.',
  })
  async confusionMatrixUrl(@Root() run: Run, @Ctx() ctx: GraphQLContext): Promise<string | null> {
    return (await evaluationOf(run, ctx.services.tracking)) ? confusionMatrixUrl(run.id) : null;
  }

  @FieldResolver(() => [ModelVersionRef], { description: 'Model versions registered from it.' })
  registeredVersions(@Root() run: Run, @Ctx() ctx: GraphQLContext): Promise<ModelVersionRef[]> {
    return registeredVersionsOfRun(ctx.services.database.db, run.id);
  }
}

// The trainer writes evaluation.json and the PNG together; read the JSON once per run object.
const evaluations = new WeakMap<Run, Promise<RunEvaluation | null>>();
function evaluationOf(run: Run, tracking: TrackingStore): Promise<RunEvaluation | null> {
  let evaluation = evaluations.get(run);
  if (!evaluation) {
    evaluation = readRunEvaluation((file) => tracking.readArtifact(run.id, file));
    evaluations.set(run, evaluation);
  }
  return evaluation;
}

/** A page of runs as a RunConnection; shared by `runs` and `Experiment.runs`. */
export async function runPage(
  ctx: GraphQLContext,
  search: Pick<RunSearch, 'experimentIds'> & {
    filter: string | null;
    orderBy: string[] | null;
    first: number;
    after: string | null;
  },
): Promise<ConnectionValue<Run>> {
  const page = await searchRunPage(
    { db: ctx.services.database.db, tracking: ctx.services.tracking },
    {
      ...(search.experimentIds && { experimentIds: search.experimentIds }),
      ...(search.filter != null && { filter: search.filter }),
      ...(search.orderBy != null && { orderBy: search.orderBy }),
      first: search.first,
      after: search.after ?? null,
    },
  );
  const edges = page.runs.map((run, i) => ({ cursor: page.cursors[i]!, node: toRun(run) }));
  return {
    edges,
    pageInfo: { hasNextPage: page.hasNextPage, endCursor: edges.at(-1)?.cursor ?? null },
    totalCount: page.totalCount,
  };
}

@Resolver(() => ModelVersion)
export class ModelVersionRunResolver {
  @FieldResolver(() => Run, {
    nullable: true,
    description: 'The tracking run that produced it; null if registered from a folder or deleted.',
  })
  async run(@Root() version: ModelVersion, @Ctx() ctx: GraphQLContext): Promise<Run | null> {
    if (version.runId === null) return null;
    try {
      return toRun(await ctx.services.tracking.getRun(version.runId));
    } catch (error) {
      if (isMenagerieError(error, 'RUN_NOT_FOUND')) return null;
      throw error;
    }
  }
}
