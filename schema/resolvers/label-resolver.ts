import { Arg, Ctx, FieldResolver, Int, Query, Resolver, Root } from 'type-graphql';
import type { Split } from '../../data/tables.js';
import type { ConnectionValue } from '../connection.js';
import type { GraphQLContext } from '../context.js';
import { Image, ImageConnection } from '../image.js';
import { ImageStats, Label, toLabel } from '../label.js';
import { SplitEnum } from '../split.js';
import { imagePage } from './image-resolver.js';

@Resolver(() => Label)
export class LabelResolver {
  @Query(() => [Label], { description: 'Every label by name, with image counts per split.' })
  async labels(@Ctx() ctx: GraphQLContext): Promise<Label[]> {
    return [...(await ctx.loaders.labelsById()).values()].map(toLabel);
  }

  @Query(() => ImageStats)
  imageStats(@Ctx() ctx: GraphQLContext): Promise<ImageStats> {
    return ctx.loaders.imageStats();
  }

  @FieldResolver(() => ImageConnection, { description: "This label's images." })
  images(
    @Root() label: Label,
    @Ctx() ctx: GraphQLContext,
    @Arg('split', () => SplitEnum, { nullable: true }) split: Split | null,
    @Arg('first', () => Int, { defaultValue: 50 }) first: number,
    @Arg('after', () => String, { nullable: true }) after: string | null,
  ): Promise<ConnectionValue<Image>> {
    return imagePage(ctx, { label: label.name, split, first, after });
  }
}
