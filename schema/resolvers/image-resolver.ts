import GraphQLUpload from 'graphql-upload/GraphQLUpload.mjs';
import type { FileUpload } from 'graphql-upload/processRequest.mjs';
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
import type { CatalogImage } from '../../data/image-catalog.js';
import { imageCursor } from '../../data/image-service.js';
import {
  clampThumbnailSize,
  DEFAULT_THUMBNAIL_SIZE,
  parseThumbnailSize,
} from '../../data/thumbnail-cache.js';
import { thumbnailUrl } from '../resource-urls.js';
import type { Split } from '../../data/tables.js';
import { checkPageSize, toConnection, type ConnectionValue } from '../connection.js';
import type { GraphQLContext } from '../context.js';
import { parseId } from '../ids.js';
import { AddImagePayload, Image, ImageConnection, ImageFilter, toImage } from '../image.js';
import { Label, toLabel } from '../label.js';
import { SplitEnum } from '../split.js';
import { readUpload } from '../upload.js';

@Resolver(() => Image)
export class ImageResolver {
  @Query(() => ImageConnection, { description: 'Images in id order, a page at a time.' })
  async images(
    @Ctx() ctx: GraphQLContext,
    @Arg('filter', () => ImageFilter, { nullable: true }) filter: ImageFilter | null,
    @Arg('first', () => Int, { defaultValue: 50, description: 'Page size, 1 to 1000.' })
    first: number,
    @Arg('after', () => String, { nullable: true }) after: string | null,
  ): Promise<ConnectionValue<Image>> {
    return imagePage(ctx, { ...(filter ?? {}), first, after });
  }

  @Query(() => Image, { nullable: true })
  async image(@Ctx() ctx: GraphQLContext, @Arg('id', () => ID) id: string): Promise<Image | null> {
    const row = await ctx.services.images.get(parseId(id));
    return row ? toImage(row) : null;
  }

  @Mutation(() => AddImagePayload, {
    description:
      'Stores an uploaded JPEG, PNG or WebP (sniffed from its bytes). Uploading stored bytes ' +
      'again returns the existing image with `duplicate: true`.',
  })
  async addImage(
    @Ctx() ctx: GraphQLContext,
    @Arg('file', () => GraphQLUpload) file: Promise<FileUpload>,
    @Arg('label', () => String) label: string,
    @Arg('split', () => SplitEnum, { nullable: true }) split: Split | null,
  ): Promise<AddImagePayload> {
    const bytes = await readUpload(file);
    const { image, duplicate } = await ctx.services.images.add(bytes, {
      label,
      ...(split ? { split } : {}),
    });
    if (!duplicate) {
      ctx.services.events.publish('imageAdded', image);
      ctx.services.serving.imagesAdded();
    }
    return { image: toImage(image), duplicate };
  }

  @Mutation(() => Image, { description: 'Moves an image to another label, creating it if new.' })
  async relabel(
    @Ctx() ctx: GraphQLContext,
    @Arg('id', () => ID) id: string,
    @Arg('label', () => String) label: string,
  ): Promise<Image> {
    return toImage(await ctx.services.images.relabel(parseId(id), label));
  }

  @Mutation(() => ID, { description: 'Deletes an image and its stored bytes; returns its id.' })
  async deleteImage(@Ctx() ctx: GraphQLContext, @Arg('id', () => ID) id: string): Promise<number> {
    return (await ctx.services.images.delete(parseId(id))).id;
  }

  @Subscription(() => Image, {
    description: 'Each image added through the API.',
    subscribe: ({ context }) => (context as GraphQLContext).services.events.subscribe('imageAdded'),
  })
  imageAdded(@Root() image: CatalogImage): Image {
    return toImage(image);
  }

  @FieldResolver(() => Label)
  async label(@Root() image: Image, @Ctx() ctx: GraphQLContext): Promise<Label> {
    const label = (await ctx.loaders.labelsById()).get(image.labelId);
    if (!label) throw new Error(`image ${image.id} names label ${image.labelId}, which is missing`);
    return toLabel(label);
  }

  @FieldResolver(() => String, {
    description: 'A WebP thumbnail; `size` (1 to 512) is rounded up to 64, 128, 256 or 512.',
  })
  thumbnailUrl(
    @Root() image: Image,
    @Arg('size', () => Int, { defaultValue: DEFAULT_THUMBNAIL_SIZE }) size: number,
  ): string {
    return thumbnailUrl(image.id, clampThumbnailSize(parseThumbnailSize(size)));
  }
}

export async function imagePage(
  ctx: GraphQLContext,
  query: { label?: string | null; split?: Split | null; first: number; after: string | null },
): Promise<ConnectionValue<Image>> {
  checkPageSize(query.first);
  const page = await ctx.services.images.list({
    ...(query.label != null ? { label: query.label } : {}),
    ...(query.split != null ? { split: query.split } : {}),
    first: query.first,
    after: query.after,
  });
  return toConnection({ ...page, rows: page.images }, toImage, imageCursor);
}
