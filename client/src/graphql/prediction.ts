import { gql } from '@urql/core';
import type { ImageSummary, SimilarImages } from './images.js';

/** Predictions, what serves them, and the feedback that grows the data set. */

export interface ModelVersionRef {
  name: string;
  version: number;
}

export interface Prediction {
  id: string;
  label: string;
  confidence: number;
  uncertain: boolean;
  probabilities: { label: string; probability: number }[];
  modelVersion: ModelVersionRef;
  latencyMs: number;
  similar: SimilarImages;
}

/** How many neighbours one predict fetches; the gallery shows them a row at a time. */
export const SIMILAR_FETCHED = 24;

export const PREDICT_MUTATION = gql<
  { predict: Prediction },
  { file: File; topK: number; k: number }
>`
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
`;

export const SUBMIT_FEEDBACK_MUTATION = gql<
  { submitFeedback: ImageSummary },
  { predictionId: string; correctLabel: string }
>`
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
`;

export interface ServingInfo {
  /** The registered model whose champion is followed, even while nothing serves. */
  modelName: string;
  model: ModelVersionRef | null;
  labels: string[];
  loadedAt: string | null;
}

export const SERVING_QUERY = gql<{ serving: ServingInfo }, Record<string, never>>`
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
`;
