import { gql } from '@urql/core';

/** The data set: images, labels and their counts. */

export type Split = 'TRAIN' | 'VAL' | 'TEST';
export const SPLITS: readonly Split[] = ['TRAIN', 'VAL', 'TEST'];

export interface SplitCounts {
  train: number;
  val: number;
  test: number;
  total: number;
}

export interface ImageSummary {
  id: string;
  thumbnailUrl: string;
  split: Split;
  label: { name: string };
}

export interface ImageDetail extends ImageSummary {
  url: string;
  width: number;
  height: number;
  format: string;
  bytes: number;
  sha256: string;
  addedAt: string;
}

export interface PageInfo {
  endCursor: string | null;
  hasNextPage: boolean;
}

export interface LabelCounts {
  id: string;
  name: string;
  counts: SplitCounts;
}

const IMAGE_SUMMARY = gql`
  fragment ImageSummary on Image {
    id
    thumbnailUrl(size: 256)
    split
    label {
      id
      name
    }
  }
`;

export const IMAGES_QUERY = gql<
  {
    images: {
      totalCount: number;
      pageInfo: PageInfo;
      edges: { cursor: string; node: ImageSummary }[];
    };
  },
  { first: number; after?: string | null; filter?: { label?: string; split?: Split } }
>`
  query DatasetImages($first: Int!, $after: String, $filter: ImageFilter) {
    images(first: $first, after: $after, filter: $filter) {
      totalCount
      pageInfo {
        endCursor
        hasNextPage
      }
      edges {
        cursor
        node {
          ...ImageSummary
        }
      }
    }
  }
  ${IMAGE_SUMMARY}
`;

export const LABELS_QUERY = gql<{ labels: LabelCounts[] }, Record<string, never>>`
  query Labels {
    labels {
      id
      name
      counts {
        train
        val
        test
        total
      }
    }
  }
`;

export const IMAGE_QUERY = gql<{ image: ImageDetail | null }, { id: string }>`
  query ImageDetail($id: ID!) {
    image(id: $id) {
      ...ImageSummary
      url
      width
      height
      format
      bytes
      sha256
      addedAt
    }
  }
  ${IMAGE_SUMMARY}
`;

export type SimilarMethod = 'EMBEDDING' | 'RANDOM';

export interface SimilarImages {
  method: SimilarMethod;
  /** Why RANDOM was used (embeddings still computing, failed, no model…). */
  reason: string | null;
  images: { distance: number | null; image: ImageSummary }[];
}

/** Nearest neighbours in the serving model's embedding space (random while it has none). */
export const IMAGE_SIMILAR_QUERY = gql<
  { image: { id: string; similar: SimilarImages } | null },
  { id: string; k: number }
>`
  query ImageSimilar($id: ID!, $k: Int!) {
    image(id: $id) {
      id
      similar(k: $k, sameLabel: false) {
        method
        reason
        images {
          distance
          image {
            ...ImageSummary
          }
        }
      }
    }
  }
  ${IMAGE_SUMMARY}
`;

export const ADD_IMAGE_MUTATION = gql<
  { addImage: { duplicate: boolean; image: ImageSummary } },
  { file: File; label: string; split?: Split | null }
>`
  mutation AddImage($file: Upload!, $label: String!, $split: Split) {
    addImage(file: $file, label: $label, split: $split) {
      duplicate
      image {
        ...ImageSummary
      }
    }
  }
  ${IMAGE_SUMMARY}
`;

export const RELABEL_MUTATION = gql<{ relabel: ImageSummary }, { id: string; label: string }>`
  mutation Relabel($id: ID!, $label: String!) {
    relabel(id: $id, label: $label) {
      ...ImageSummary
    }
  }
  ${IMAGE_SUMMARY}
`;
