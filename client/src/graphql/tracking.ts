import { gql } from '@urql/core';
import type { ModelVersionRef } from './prediction.js';

/** Experiments, runs, params and metric histories. */

export type RunStatus = 'RUNNING' | 'FINISHED' | 'FAILED' | 'KILLED';

export interface KeyValue {
  key: string;
  value: string;
}

export interface Metric {
  key: string;
  /** Null when the logged value was NaN or infinite (GraphQL Float cannot carry them). */
  value: number | null;
  step: number;
  timestamp: string;
}

export interface Experiment {
  id: string;
  name: string;
  runCount: number;
}

export interface RunRow {
  id: string;
  name: string | null;
  status: RunStatus;
  startTime: string;
  endTime: string | null;
  parentRunId: string | null;
  params: KeyValue[];
  latestMetrics: Metric[];
  children: { id: string }[];
}

export interface ConfusionMatrix {
  labels: string[];
  /** counts[true][predicted] */
  counts: number[][];
}

export interface RunDetail extends RunRow {
  metricKeys: string[];
  history: Metric[];
  confusionMatrix: ConfusionMatrix | null;
  classMetrics: { label: string; precision: number; recall: number; f1: number; support: number }[];
  registeredVersions: ModelVersionRef[];
  tags: KeyValue[];
}

export const EXPERIMENTS_QUERY = gql<{ experiments: Experiment[] }, Record<string, never>>`
  query Experiments {
    experiments {
      id
      name
      runCount
    }
  }
`;

const RUN_ROW = gql`
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
`;

export const RUNS_QUERY = gql<
  { runs: { totalCount: number; edges: { node: RunRow }[] } },
  { experiment?: string | null; filter?: string | null; orderBy?: string[]; first: number }
>`
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
  ${RUN_ROW}
`;

export const RUN_DETAIL_QUERY = gql<{ run: RunDetail | null }, { id: string; key: string }>`
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
  ${RUN_ROW}
`;

export interface TuningRun extends RunRow {
  children: (RunRow & { children: { id: string }[] })[];
}

export const TUNING_RUN_QUERY = gql<{ run: TuningRun | null }, { id: string }>`
  query TuningRun($id: ID!) {
    run(id: $id) {
      ...RunRow
      children {
        ...RunRow
      }
    }
  }
  ${RUN_ROW}
`;
