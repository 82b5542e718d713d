import { registerEnumType } from 'type-graphql';
import type { ModelStage, ModelVersionStatus, StageTransitionAction } from '../data/tables.js';

/** GraphQL names for the registry's stages: `PRODUCTION` is stored as `'Production'`. */
export const StageNameEnum = {
  NONE: 'None',
  STAGING: 'Staging',
  PRODUCTION: 'Production',
  ARCHIVED: 'Archived',
} as const satisfies Record<string, ModelStage>;

registerEnumType(StageNameEnum, {
  name: 'StageName',
  description: "A model version's stage, as in MLflow.",
});

export const ModelVersionStatusEnum = {
  PENDING: 'PENDING',
  READY: 'READY',
  FAILED: 'FAILED',
} as const satisfies Record<ModelVersionStatus, ModelVersionStatus>;

registerEnumType(ModelVersionStatusEnum, {
  name: 'ModelVersionStatus',
  description: 'PENDING while being registered; only READY versions can be staged or aliased.',
});

export const TransitionActionEnum = {
  CREATE: 'create',
  STAGE: 'stage',
  ALIAS_SET: 'alias_set',
  ALIAS_DELETE: 'alias_delete',
  DELETE: 'delete',
} as const satisfies Record<string, StageTransitionAction>;

registerEnumType(TransitionActionEnum, {
  name: 'TransitionAction',
  description: 'What a row of the registry audit trail records.',
});
