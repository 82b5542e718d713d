import { Field, Int, ObjectType } from 'type-graphql';
import type { RegisteredModel as RegistryModel } from '../registry/model-registry.js';
import { Tag, toKeyValues } from './key-value.js';
import { TimestampScalar } from './timestamp-scalar.js';

@ObjectType({ description: 'A mutable, named pointer to a version (`champion`, `challenger`…).' })
export class Alias {
  @Field(() => String)
  alias!: string;

  @Field(() => Int)
  version!: number;
}

@ObjectType({ description: 'A named model in the registry, with numbered versions.' })
export class RegisteredModel {
  @Field(() => String)
  name!: string;

  @Field(() => String, { nullable: true })
  description!: string | null;

  @Field(() => [Tag])
  tags!: Tag[];

  @Field(() => TimestampScalar)
  createdAt!: number;

  @Field(() => [Alias], { description: 'By alias name.' })
  aliases!: Alias[];
}

export const toRegisteredModel = (m: RegistryModel): RegisteredModel => ({
  name: m.name,
  description: m.description,
  tags: toKeyValues(m.tags),
  createdAt: m.createdAt,
  aliases: Object.keys(m.aliases)
    .sort()
    .map((alias) => ({ alias, version: m.aliases[alias]! })),
});
