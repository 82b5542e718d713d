import { Field, Int, ObjectType } from 'type-graphql';

@ObjectType({ description: 'Names a registered model version: `models:/<name>/<version>`.' })
export class ModelVersionRef {
  @Field(() => String)
  name!: string;

  @Field(() => Int)
  version!: number;
}
