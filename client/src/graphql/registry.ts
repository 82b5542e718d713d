import { gql } from '@urql/core';
import type { KeyValue } from './tracking.js';

/** Registered models, versions, stages and aliases. */

export type StageName = 'NONE' | 'STAGING' | 'PRODUCTION' | 'ARCHIVED';

export interface ModelVersion {
  name: string;
  version: number;
  status: 'PENDING' | 'READY' | 'FAILED';
  stage: StageName;
  aliases: string[];
  plugin: string;
  labels: string[];
  metrics: KeyValue[];
  createdAt: string;
  runId: string | null;
  /** Null when registered from a folder, or when its run was deleted (runId stays). */
  run: { id: string; name: string | null } | null;
}

export type TransitionAction = 'CREATE' | 'STAGE' | 'ALIAS_SET' | 'ALIAS_DELETE' | 'DELETE';

export interface StageTransition {
  id: string;
  action: TransitionAction;
  version: number;
  /** For alias changes: the version the alias named before. */
  previousVersion: number | null;
  fromStage: StageName | null;
  toStage: StageName | null;
  alias: string | null;
  user: string | null;
  comment: string | null;
  at: string;
}

export interface RegisteredModelSummary {
  name: string;
  description: string | null;
  aliases: { alias: string; version: number }[];
  champion: { version: number } | null;
  latestVersions: { version: number; stage: StageName }[];
}

export interface RegisteredModelDetail {
  name: string;
  description: string | null;
  champion: ModelVersion | null;
  versions: { totalCount: number; edges: { node: ModelVersion }[] };
  transitions: StageTransition[];
}

const MODEL_VERSION = gql`
  fragment ModelVersionFields on ModelVersion {
    name
    version
    status
    stage
    aliases
    plugin
    labels
    metrics {
      key
      value
    }
    createdAt
    runId
    run {
      id
      name
    }
  }
`;

export const REGISTERED_MODELS_QUERY = gql<
  { registeredModels: RegisteredModelSummary[] },
  Record<string, never>
>`
  query RegisteredModels {
    registeredModels {
      name
      description
      aliases {
        alias
        version
      }
      champion {
        name
        version
      }
      latestVersions {
        name
        version
        stage
      }
    }
  }
`;

export const REGISTERED_MODEL_QUERY = gql<
  { registeredModel: RegisteredModelDetail | null },
  { name: string }
>`
  query RegisteredModel($name: String!) {
    registeredModel(name: $name) {
      name
      description
      champion {
        ...ModelVersionFields
      }
      versions(first: 100) {
        totalCount
        edges {
          node {
            ...ModelVersionFields
          }
        }
      }
      transitions {
        id
        action
        version
        previousVersion
        fromStage
        toStage
        alias
        user
        comment
        at
      }
    }
  }
  ${MODEL_VERSION}
`;

export const PROMOTE_CHAMPION_MUTATION = gql<
  { promoteChampion: ModelVersion },
  { name: string; version: number; comment?: string | null }
>`
  mutation PromoteChampion($name: String!, $version: Int!, $comment: String) {
    promoteChampion(name: $name, version: $version, comment: $comment) {
      ...ModelVersionFields
    }
  }
  ${MODEL_VERSION}
`;

export const TRANSITION_STAGE_MUTATION = gql<
  { transitionStage: ModelVersion },
  { name: string; version: number; stage: StageName; comment?: string | null }
>`
  mutation TransitionStage($name: String!, $version: Int!, $stage: StageName!, $comment: String) {
    transitionStage(name: $name, version: $version, stage: $stage, comment: $comment) {
      ...ModelVersionFields
    }
  }
  ${MODEL_VERSION}
`;
