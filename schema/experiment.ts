import { Field, ID, ObjectType } from 'type-graphql';
import type { Experiment as StoredExperiment } from '../tracking/tracking-store.js';
import { Tag, toKeyValues } from './key-value.js';
import { TimestampScalar } from './timestamp-scalar.js';

@ObjectType({ description: 'A named group of runs (MLflow experiment), soft-deletable.' })
export class Experiment {
  @Field(() => ID)
  id!: number;

  @Field(() => String)
  name!: string;

  @Field(() => String, { nullable: true })
  description!: string | null;

  @Field(() => [Tag])
  tags!: Tag[];

  @Field(() => Boolean, { description: 'Deleted experiments keep their runs out of searches.' })
  deleted!: boolean;

  @Field(() => TimestampScalar)
  createdAt!: number;
}

export function toExperiment(experiment: StoredExperiment): Experiment {
  return {
    id: experiment.id,
    name: experiment.name,
    description: experiment.description,
    tags: toKeyValues(experiment.tags),
    deleted: experiment.lifecycle === 'deleted',
    createdAt: experiment.createdAt,
  };
}
