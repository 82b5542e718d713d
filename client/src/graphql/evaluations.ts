import { graphql, type ResultOf } from './graphql.js';

/** Evaluations of model versions: listing, detail, starting one, following it. */

// Not exported: a document of a fragment alone is not an operation (tests/client/documents.test.ts).
const EVALUATION_SUMMARY = graphql(`
  fragment EvaluationSummary on ModelEvaluation {
    id
    status
    error
    createdAt
    createdBy
    done
    total
    dataset {
      kind
      source
      imageCount
      sha256
    }
    accuracy
    macroF1
    ece
    classMetrics {
      label
      f1
    }
  }
`);
export type EvaluationSummary = ResultOf<typeof EVALUATION_SUMMARY>;

/** Every version's evaluations, newest first: the Registry page's list and comparison. */
export const MODEL_EVALUATIONS_QUERY = graphql(
  `
    query ModelEvaluations($name: String!) {
      registeredModel(name: $name) {
        name
        versions(first: 100) {
          edges {
            node {
              version
              evaluations {
                ...EvaluationSummary
              }
            }
          }
        }
      }
    }
  `,
  [EVALUATION_SUMMARY],
);
export const EVALUATION_QUERY = graphql(
  `
    query Evaluation($id: ID!) {
      evaluation(id: $id) {
        ...EvaluationSummary
        loss
        macroPrecision
        macroRecall
        modelVersion {
          name
          version
        }
        classMetrics {
          label
          precision
          recall
          f1
          support
        }
        confusionMatrix {
          labels
          counts
        }
        confusionMatrixUrl
        reliability {
          lower
          upper
          count
          accuracy
          confidence
        }
        worstErrors {
          rank
          source
          trueLabel
          predictedLabel
          confidence
          url
          thumbnailUrl(size: 128)
        }
        unreadable {
          path
          reason
          detail
        }
        unknownLabels {
          label
          count
        }
      }
    }
  `,
  [EVALUATION_SUMMARY],
);
export type EvaluationDetail = NonNullable<ResultOf<typeof EVALUATION_QUERY>['evaluation']>;

export const EVALUATE_MODEL_MUTATION = graphql(
  `
    mutation EvaluateModel($input: EvaluateModelInput!) {
      evaluateModel(input: $input) {
        ...EvaluationSummary
      }
    }
  `,
  [EVALUATION_SUMMARY],
);

export const EVALUATION_PROGRESS_SUBSCRIPTION = graphql(`
  subscription EvaluationProgress($id: ID!) {
    evaluationProgress(id: $id) {
      evaluationId
      status
      done
      total
      message
      final
    }
  }
`);
export type EvaluationProgress = ResultOf<
  typeof EVALUATION_PROGRESS_SUBSCRIPTION
>['evaluationProgress'];
