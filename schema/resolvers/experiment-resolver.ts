import { Arg, Ctx, FieldResolver, Int, Query, Resolver, Root } from 'type-graphql';
import { countRunIds } from '../../tracking/run-search.js';
import type { ConnectionValue } from '../connection.js';
import type { GraphQLContext } from '../context.js';
import { Experiment, toExperiment } from '../experiment.js';
import { RunConnection, type Run } from '../run.js';
import { runPage } from './run-resolver.js';

@Resolver(() => Experiment)
export class ExperimentResolver {
  @Query(() => [Experiment], { description: 'Experiments in creation order.' })
  async experiments(
    @Ctx() ctx: GraphQLContext,
    @Arg('includeDeleted', () => Boolean, { nullable: true, defaultValue: false })
    includeDeleted: boolean | null,
  ): Promise<Experiment[]> {
    const all = await ctx.services.tracking.listExperiments({
      includeDeleted: includeDeleted === true,
    });
    return all.map(toExperiment);
  }

  @Query(() => Experiment, {
    nullable: true,
    description: 'An experiment by name, deleted ones included.',
  })
  async experiment(
    @Ctx() ctx: GraphQLContext,
    @Arg('name', () => String) name: string,
  ): Promise<Experiment | null> {
    const found = await ctx.services.tracking.getExperimentByName(name);
    return found ? toExperiment(found) : null;
  }

  @FieldResolver(() => Int, { description: 'Its runs (not deleted); 0 while it is deleted.' })
  runCount(@Root() experiment: Experiment, @Ctx() ctx: GraphQLContext): Promise<number> {
    return countRunIds(ctx.services.database.db, { experimentIds: [experiment.id] });
  }

  @FieldResolver(() => RunConnection, { description: 'Its runs, searched as `Query.runs`.' })
  runs(
    @Root() experiment: Experiment,
    @Ctx() ctx: GraphQLContext,
    @Arg('filter', () => String, { nullable: true }) filter: string | null,
    @Arg('orderBy', () => [String], { nullable: true }) orderBy: string[] | null,
    @Arg('first', () => Int, { defaultValue: 50 }) first: number,
    @Arg('after', () => String, { nullable: true }) after: string | null,
  ): Promise<ConnectionValue<Run>> {
    return runPage(ctx, { experimentIds: [experiment.id], filter, orderBy, first, after });
  }
}
