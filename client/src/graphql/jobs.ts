import { gql } from '@urql/core';
import type { Metric, RunStatus } from './tracking.js';

/** Model plugins, tuners, and training/tuning jobs. */

/** One hyperparameter; `type` is int, float, choice, boolean or fixed (plugin-api/hyperparameters.ts). */
export interface HpSpec {
  name: string;
  type: string;
  min: number | null;
  max: number | null;
  step: number | null;
  sampling: string | null;
  values: string[] | null;
  default: string;
}

export interface ModelPluginInfo {
  name: string;
  version: string | null;
  description: string | null;
  space: HpSpec[];
}

export interface TunerInfo {
  name: string;
  description: string | null;
}

export const TRAINING_OPTIONS_QUERY = gql<
  { modelPlugins: ModelPluginInfo[]; tuners: TunerInfo[] },
  Record<string, never>
>`
  query TrainingOptions {
    modelPlugins {
      name
      version
      description
      space {
        name
        type
        min
        max
        step
        sampling
        values
        default
      }
    }
    tuners {
      name
      description
    }
  }
`;

export interface TrainingInput {
  plugin: string;
  experiment?: string;
  runName?: string | null;
  epochs?: number;
  hyperparameters?: string;
  seed?: number | null;
  batchSize?: number | null;
  /** Early-stopping patience; 0 trains every epoch asked for. */
  patience?: number | null;
}

export interface TuningInput {
  plugin: string;
  tuner: string;
  experiment?: string;
  runName?: string | null;
  maxTrials?: number;
  epochs?: number;
  objective?: string;
  direction?: string;
  seed?: number | null;
}

interface StartedRun {
  id: string;
  name: string | null;
  status: RunStatus;
}

export const START_TRAINING_MUTATION = gql<{ startTraining: StartedRun }, { input: TrainingInput }>`
  mutation StartTraining($input: TrainingInput!) {
    startTraining(input: $input) {
      id
      name
      status
    }
  }
`;

export const START_TUNING_MUTATION = gql<{ startTuning: StartedRun }, { input: TuningInput }>`
  mutation StartTuning($input: TuningInput!) {
    startTuning(input: $input) {
      id
      name
      status
    }
  }
`;

export const CANCEL_RUN_MUTATION = gql<{ cancelRun: StartedRun }, { id: string }>`
  mutation CancelRun($id: ID!) {
    cancelRun(id: $id) {
      id
      name
      status
    }
  }
`;

export interface RunProgress {
  /** The run this update is about: a trial's id within a tuning run. */
  runId: string;
  /** The tuning run, for a trial's update. */
  parentRunId: string | null;
  status: RunStatus;
  epoch: number | null;
  epochs: number | null;
  batch: number | null;
  batches: number | null;
  metrics: Metric[];
  message: string | null;
}

export const RUN_PROGRESS_SUBSCRIPTION = gql<{ runProgress: RunProgress }, { runId: string }>`
  subscription RunProgress($runId: ID!) {
    runProgress(runId: $runId) {
      runId
      parentRunId
      status
      epoch
      epochs
      batch
      batches
      metrics {
        key
        value
        step
        timestamp
      }
      message
    }
  }
`;
