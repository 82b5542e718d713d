import { Field, ObjectType } from 'type-graphql';

@ObjectType({ description: 'A free-form key/value label on a model, version, experiment or run.' })
export class Tag {
  @Field(() => String)
  key!: string;

  @Field(() => String)
  value!: string;
}

@ObjectType({ description: 'A key/value pair whose value is given as a string.' })
export class Param {
  @Field(() => String)
  key!: string;

  @Field(() => String)
  value!: string;
}

/** `{ a: 'x' }` → `[{ key: 'a', value: 'x' }]`, sorted by key so answers are stable. */
export function toKeyValues(record: Readonly<Record<string, string | number>>): Tag[] {
  return Object.keys(record)
    .sort()
    .map((key) => ({ key, value: String(record[key]) }));
}
