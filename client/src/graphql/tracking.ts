import { graphql, type EnumOf, type ResultOf } from './graphql.js';

/** Experiments, runs, params and metric histories. */

export type RunStatus = EnumOf<'RunStatus'>;

export const EXPERIMENTS_QUERY = graphql(`
  query Experiments {
    experiments {
      id
      name
      runCount
    }
  }
`);

const RUN_ROW = graphql(`
  fragment RunRow on Run {
    id
    name
    status
    startTime
    endTime
    parentRunId
    params {
      key
      value
    }
    latestMetrics {
      key
      value
      step
      timestamp
    }
    children {
      id
    }
  }
`);
export type RunRow = ResultOf<typeof RUN_ROW>;
export type Param = RunRow['params'][number];
export type Metric = RunRow['latestMetrics'][number];

export const RUNS_QUERY = graphql(
  `
    query Runs($experiment: String, $filter: String, $orderBy: [String!], $first: Int!) {
      runs(experiment: $experiment, filter: $filter, orderBy: $orderBy, first: $first) {
        totalCount
        edges {
          node {
            ...RunRow
          }
        }
      }
    }
  `,
  [RUN_ROW],
);

export const RUN_DETAIL_QUERY = graphql(
  `
    query RunDetail($id: ID!, $key: String!) {
      run(id: $id) {
        ...RunRow
        metricKeys
        history: metricHistory(key: $key) {
          key
          value
          step
          timestamp
        }
        confusionMatrix {
          labels
          counts
        }
        classMetrics {
          label
          precision
          recall
          f1
          support
        }
        registeredVersions {
          name
          version
        }
        tags {
          key
          value
        }
      }
    }
  `,
  [RUN_ROW],
);
export type RunDetail = NonNullable<ResultOf<typeof RUN_DETAIL_QUERY>['run']>;
export type ConfusionMatrix = NonNullable<RunDetail['confusionMatrix']>;

// `children` comes before `...RunRow`: gql.tada types a list selected both here and in the
// fragment as an intersection of two array types, and `map` or `for…of` take the first one's.
export const TUNING_RUN_QUERY = graphql(
  `
    query TuningRun($id: ID!) {
      run(id: $id) {
        children {
          ...RunRow
        }
        ...RunRow
      }
    }
  `,
  [RUN_ROW],
);
