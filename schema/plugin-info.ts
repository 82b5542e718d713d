import { Field, Float, ObjectType } from 'type-graphql';
import type { ModelPlugin, TunerPlugin } from '../plugin-api/plugin.js';
import { HyperParameters, type HpSpec as Spec } from '../plugin-api/hyperparameters.js';

@ObjectType({
  description:
    "One hyperparameter of a model plugin's search space; values and default as strings " +
    '(type says how to read them: int, float, choice, boolean or fixed).',
})
export class HpSpec {
  @Field(() => String)
  name!: string;

  @Field(() => String)
  type!: string;

  @Field(() => Float, { nullable: true })
  min!: number | null;

  @Field(() => Float, { nullable: true })
  max!: number | null;

  @Field(() => Float, { nullable: true })
  step!: number | null;

  @Field(() => String, { nullable: true, description: 'linear or log.' })
  sampling!: string | null;

  @Field(() => [String], { nullable: true, description: 'The choices (choice, fixed).' })
  values!: string[] | null;

  @Field(() => String)
  default!: string;
}

@ObjectType({ description: 'A registered model plugin and its hyperparameter space.' })
export class ModelPluginInfo {
  @Field(() => String)
  name!: string;

  @Field(() => String, { nullable: true })
  version!: string | null;

  @Field(() => String, { nullable: true })
  description!: string | null;

  @Field(() => [HpSpec])
  space!: HpSpec[];
}

@ObjectType({ description: 'A registered tuner plugin (random, grid, hyperband, bayesian…).' })
export class TunerInfo {
  @Field(() => String)
  name!: string;

  @Field(() => String, { nullable: true })
  description!: string | null;
}

function toHpSpec(spec: Spec): HpSpec {
  const none = { min: null, max: null, step: null, sampling: null, values: null };
  switch (spec.type) {
    case 'int':
    case 'float':
      return {
        ...none,
        name: spec.name,
        type: spec.type,
        min: spec.min,
        max: spec.max,
        step: spec.step ?? null,
        sampling: spec.sampling,
        default: String(spec.default),
      };
    case 'choice':
      return {
        ...none,
        name: spec.name,
        type: spec.type,
        values: spec.values.map(String),
        default: String(spec.default),
      };
    case 'boolean':
      return { ...none, name: spec.name, type: spec.type, default: String(spec.default) };
    case 'fixed':
      return {
        ...none,
        name: spec.name,
        type: spec.type,
        values: [String(spec.value)],
        default: String(spec.value),
      };
  }
}

/** A model plugin with its space, discovered by declaring it on empty HyperParameters. */
export function toModelPluginInfo(plugin: ModelPlugin): ModelPluginInfo {
  const hp = new HyperParameters();
  plugin.space(hp);
  return {
    name: plugin.name,
    version: plugin.version ?? null,
    description: plugin.description ?? null,
    space: hp.space.map(toHpSpec),
  };
}

export function toTunerInfo(plugin: TunerPlugin): TunerInfo {
  return { name: plugin.name, description: plugin.description ?? null };
}
