import { Field, ObjectType } from 'type-graphql';
import { ModelVersionRef } from './model-version-ref.js';
import { TimestampScalar } from './timestamp-scalar.js';

@ObjectType({ description: 'What answers predict.' })
export class ServingInfo {
  @Field(() => String, { description: 'The registered model whose champion is followed.' })
  modelName!: string;

  @Field(() => ModelVersionRef, { nullable: true, description: 'Null while nothing serves.' })
  model!: ModelVersionRef | null;

  @Field(() => [String], { description: "The serving version's classes in output order." })
  labels!: string[];

  @Field(() => TimestampScalar, { nullable: true })
  loadedAt!: number | null;
}
