import { Field, Float, ID, Int, ObjectType } from 'type-graphql';
import type { LabelSummary } from '../data/image-service.js';
import { TimestampScalar } from './timestamp-scalar.js';

@ObjectType({ description: 'Image counts per split.' })
export class SplitCounts {
  @Field(() => Int)
  train!: number;

  @Field(() => Int)
  val!: number;

  @Field(() => Int)
  test!: number;

  @Field(() => Int)
  total!: number;
}

@ObjectType({ description: 'A class name images are labelled with.' })
export class Label {
  @Field(() => ID)
  id!: number;

  @Field(() => String)
  name!: string;

  @Field(() => TimestampScalar)
  createdAt!: number;

  @Field(() => SplitCounts)
  counts!: SplitCounts;
}

export const toLabel = (summary: LabelSummary): Label => ({ ...summary });

@ObjectType()
export class FormatCount {
  @Field(() => String)
  format!: string;

  @Field(() => Int)
  count!: number;
}

@ObjectType({ description: 'What the data set holds.' })
export class ImageStats {
  @Field(() => Int)
  totalCount!: number;

  @Field(() => Float, { description: 'Bytes of all stored files (a Float: it outgrows Int).' })
  totalBytes!: number;

  @Field(() => Int, { description: 'Labels with at least one image.' })
  labelCount!: number;

  @Field(() => SplitCounts)
  splits!: SplitCounts;

  @Field(() => [FormatCount])
  formats!: FormatCount[];
}
