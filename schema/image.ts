import { Field, ID, InputType, Int, ObjectType } from 'type-graphql';
import type { CatalogImage } from '../data/image-catalog.js';
import type { Split } from '../data/tables.js';
import { Connection } from './connection.js';
import { imageUrl } from './resource-urls.js';
import { SplitEnum } from './split.js';
import { TimestampScalar } from './timestamp-scalar.js';

@ObjectType({ description: 'A stored, decoded-once image with its label and split.' })
export class Image {
  @Field(() => ID)
  id!: number;

  @Field(() => String, { description: 'Hex sha256 of the bytes; identical files are stored once.' })
  sha256!: string;

  @Field(() => SplitEnum)
  split!: Split;

  @Field(() => Int)
  width!: number;

  @Field(() => Int)
  height!: number;

  @Field(() => String, { description: 'Decoded format: jpeg, png or webp.' })
  format!: string;

  @Field(() => Int, { description: 'Size of the stored file in bytes.' })
  bytes!: number;

  @Field(() => TimestampScalar)
  addedAt!: number;

  @Field(() => String, { description: 'Where the original bytes are served (GET).' })
  url!: string;

  /** Resolved to a Label by ImageResolver. */
  labelId!: number;
}

export function toImage(row: CatalogImage): Image {
  return {
    id: row.id,
    sha256: row.sha256,
    split: row.split,
    width: row.width,
    height: row.height,
    format: row.format,
    bytes: row.bytes,
    addedAt: row.added_at,
    url: imageUrl(row.id),
    labelId: row.label_id,
  };
}

@ObjectType()
export class ImageConnection extends Connection(Image, 'Image') {}

@InputType({ description: 'Images matching every given field.' })
export class ImageFilter {
  @Field(() => String, { nullable: true, description: 'Label name (normalised: `Cat` is `cat`).' })
  label?: string;

  @Field(() => SplitEnum, { nullable: true })
  split?: Split;
}

@ObjectType({ description: 'The result of addImage.' })
export class AddImagePayload {
  @Field(() => Image)
  image!: Image;

  @Field(() => Boolean, {
    description: 'The bytes were already stored; `image` is the existing image, unchanged.',
  })
  duplicate!: boolean;
}
