import { graphql, type EnumOf, type ResultOf } from './graphql.js';

/** The data set: images, labels and their counts. */

export type Split = EnumOf<'Split'>;
/** In the order the dashboard lists them. */
export const SPLITS: readonly Split[] = ['TRAIN', 'VAL', 'TEST'];

const IMAGE_SUMMARY = graphql(`
  fragment ImageSummary on Image {
    id
    thumbnailUrl(size: 256)
    split
    label {
      id
      name
    }
  }
`);
export type ImageSummary = ResultOf<typeof IMAGE_SUMMARY>;

export const IMAGES_QUERY = graphql(
  `
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
  `,
  [IMAGE_SUMMARY],
);

export const LABELS_QUERY = graphql(`
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
`);
export type LabelCounts = ResultOf<typeof LABELS_QUERY>['labels'][number];

export const IMAGE_QUERY = graphql(
  `
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
  `,
  [IMAGE_SUMMARY],
);

/** Nearest neighbours in the serving model's embedding space (random while it has none). */
export const IMAGE_SIMILAR_QUERY = graphql(
  `
    query ImageSimilar($id: ID!, $k: Int!) {
      image(id: $id) {
        id
        similar(k: $k, sameLabel: false) {
          method
          space
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
  `,
  [IMAGE_SUMMARY],
);

export const ADD_IMAGE_MUTATION = graphql(
  `
    mutation AddImage($file: Upload!, $label: String!, $split: Split) {
      addImage(file: $file, label: $label, split: $split) {
        duplicate
        image {
          ...ImageSummary
        }
      }
    }
  `,
  [IMAGE_SUMMARY],
);
export type AddedImage = ResultOf<typeof ADD_IMAGE_MUTATION>['addImage'];

export const RELABEL_MUTATION = graphql(
  `
    mutation Relabel($id: ID!, $label: String!) {
      relabel(id: $id, label: $label) {
        ...ImageSummary
      }
    }
  `,
  [IMAGE_SUMMARY],
);
