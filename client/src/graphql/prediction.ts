import { graphql, type ResultOf } from './graphql.js';

/** Predictions, what serves them, and the feedback that grows the data set. */

/** How many neighbours one predict fetches; the gallery shows them a row at a time. */
export const SIMILAR_FETCHED = 24;

export const PREDICT_MUTATION = graphql(`
  mutation Predict($file: Upload!, $topK: Int, $k: Int!) {
    predict(file: $file, topK: $topK) {
      id
      label
      confidence
      uncertain
      probabilities {
        label
        probability
      }
      modelVersion {
        name
        version
      }
      latencyMs
      similar(k: $k) {
        method
        space
        reason
        images {
          distance
          image {
            id
            thumbnailUrl(size: 256)
            split
            label {
              id
              name
            }
          }
        }
      }
    }
  }
`);
export type Prediction = ResultOf<typeof PREDICT_MUTATION>['predict'];

export const SUBMIT_FEEDBACK_MUTATION = graphql(`
  mutation SubmitFeedback($predictionId: ID!, $correctLabel: String!) {
    submitFeedback(predictionId: $predictionId, correctLabel: $correctLabel) {
      id
      thumbnailUrl(size: 256)
      split
      label {
        id
        name
      }
    }
  }
`);

export const SERVING_QUERY = graphql(`
  query Serving {
    serving {
      modelName
      model {
        name
        version
      }
      labels
      loadedAt
    }
  }
`);
export type ServingInfo = ResultOf<typeof SERVING_QUERY>['serving'];
