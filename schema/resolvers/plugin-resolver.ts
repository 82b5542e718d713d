import { Ctx, Query, Resolver } from 'type-graphql';
import type { GraphQLContext } from '../context.js';
import { ModelPluginInfo, toModelPluginInfo, toTunerInfo, TunerInfo } from '../plugin-info.js';
import type { ModelPlugin, TunerPlugin } from '../../plugin-api/plugin.js';

@Resolver()
export class PluginResolver {
  @Query(() => [ModelPluginInfo], {
    description: 'Model plugins that can be trained, with their hyperparameter spaces.',
  })
  modelPlugins(@Ctx() ctx: GraphQLContext): ModelPluginInfo[] {
    return (ctx.services.plugins.list('model') as ModelPlugin[]).map(toModelPluginInfo);
  }

  @Query(() => [TunerInfo], { description: 'Tuner plugins `startTuning` accepts.' })
  tuners(@Ctx() ctx: GraphQLContext): TunerInfo[] {
    return (ctx.services.plugins.list('tuner') as TunerPlugin[]).map(toTunerInfo);
  }
}
