import { Field, ID, Int, ObjectType } from 'type-graphql';
import type { ModelStage, StageTransitionAction } from '../data/tables.js';
import type { StageTransition as RegistryTransition } from '../registry/model-registry.js';
import { StageNameEnum, TransitionActionEnum } from './model-stage.js';
import { TimestampScalar } from './timestamp-scalar.js';

@ObjectType({ description: 'One row of the registry audit trail: who changed what, when, why.' })
export class StageTransition {
  @Field(() => ID)
  id!: number;

  @Field(() => Int)
  version!: number;

  @Field(() => TransitionActionEnum)
  action!: StageTransitionAction;

  @Field(() => StageNameEnum, { nullable: true })
  fromStage!: ModelStage | null;

  @Field(() => StageNameEnum, { nullable: true })
  toStage!: ModelStage | null;

  @Field(() => String, { nullable: true, description: 'For alias changes.' })
  alias!: string | null;

  @Field(() => Int, {
    nullable: true,
    description: 'For alias changes: the version the alias pointed to before.',
  })
  previousVersion!: number | null;

  @Field(() => String, { nullable: true })
  user!: string | null;

  @Field(() => String, { nullable: true })
  comment!: string | null;

  @Field(() => TimestampScalar)
  at!: number;
}

export const toStageTransition = (t: RegistryTransition): StageTransition => ({
  id: t.id,
  version: t.version,
  action: t.action,
  fromStage: t.fromStage as ModelStage | null,
  toStage: t.toStage as ModelStage | null,
  alias: t.alias,
  previousVersion: t.previousVersion,
  user: t.user,
  comment: t.comment,
  at: t.at,
});
