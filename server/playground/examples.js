// The playground's default tabs: one per thing a newcomer tries first.
export const EXAMPLES = [
  {
    query: `# Images a page at a time: pass pageInfo.endCursor as $after for the next page.
query Images($after: String) {
  images(filter: { split: TRAIN }, first: 10, after: $after) {
    totalCount
    pageInfo { hasNextPage endCursor }
    edges {
      node { id label { name } split width height format url thumbnailUrl(size: 128) }
    }
  }
}`,
  },
  {
    query: `# What the data set holds.
query Labels {
  labels { name counts { train val test total } }
  imageStats { totalCount totalBytes labelCount formats { format count } }
}`,
  },
  {
    query: `# One image, by id.
query Image($id: ID!) {
  image(id: $id) { id sha256 label { name } split addedAt url }
}`,
    variables: '{ "id": "1" }',
  },
  {
    query: `# Mutations need a token: set it in the Headers tab.
mutation Relabel($id: ID!, $label: String!) {
  relabel(id: $id, label: $label) { id label { name } }
}`,
    variables: '{ "id": "1", "label": "cat" }',
    headers: '{ "authorization": "Bearer <token>" }',
  },
  {
    query: `# Live: each image added through the API (over WebSocket).
subscription ImageAdded {
  imageAdded { id label { name } split }
}`,
  },
];
