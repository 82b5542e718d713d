import { graphql, type ResultOf } from './graphql.js';

/** Model plugins, tuners, and training/tuning jobs. */

export const TRAINING_OPTIONS_QUERY = graphql(`
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
`);
/** One hyperparameter; `type` is int, float, choice, boolean or fixed (plugin-api/hyperparameters.ts). */
export type HpSpec = ResultOf<
  typeof TRAINING_OPTIONS_QUERY
>['modelPlugins'][number]['space'][number];

export const START_TRAINING_MUTATION = graphql(`
  mutation StartTraining($input: TrainingInput!) {
    startTraining(input: $input) {
      id
      name
      status
    }
  }
`);

/** A run as startTraining, startTuning and cancelRun return it. */
export type StartedRun = ResultOf<typeof START_TRAINING_MUTATION>['startTraining'];

export const START_TUNING_MUTATION = graphql(`
  mutation StartTuning($input: TuningInput!) {
    startTuning(input: $input) {
      id
      name
      status
    }
  }
`);

export const CANCEL_RUN_MUTATION = graphql(`
  mutation CancelRun($id: ID!) {
    cancelRun(id: $id) {
      id
      name
      status
    }
  }
`);

export const RUN_PROGRESS_SUBSCRIPTION = graphql(`
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
`);
export type RunProgress = ResultOf<typeof RUN_PROGRESS_SUBSCRIPTION>['runProgress'];
