import { graphql, type EnumOf, type ResultOf } from './graphql.js';

/** Registered models, versions, stages and aliases. */

export type StageName = EnumOf<'StageName'>;

const MODEL_VERSION = graphql(`
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
`);
export type ModelVersion = ResultOf<typeof MODEL_VERSION>;

export const REGISTERED_MODELS_QUERY = graphql(`
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
`);

export const REGISTERED_MODEL_QUERY = graphql(
  `
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
  `,
  [MODEL_VERSION],
);

export const PROMOTE_CHAMPION_MUTATION = graphql(
  `
    mutation PromoteChampion($name: String!, $version: Int!, $comment: String) {
      promoteChampion(name: $name, version: $version, comment: $comment) {
        ...ModelVersionFields
      }
    }
  `,
  [MODEL_VERSION],
);

export const TRANSITION_STAGE_MUTATION = graphql(
  `
    mutation TransitionStage($name: String!, $version: Int!, $stage: StageName!, $comment: String) {
      transitionStage(name: $name, version: $version, stage: $stage, comment: $comment) {
        ...ModelVersionFields
      }
    }
  `,
  [MODEL_VERSION],
);
