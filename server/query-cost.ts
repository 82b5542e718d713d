import {
  getNamedType,
  getNullableType,
  isListType,
  isObjectType,
  type GraphQLField,
} from 'graphql';
import type { ComplexityEstimator } from 'graphql-query-complexity';

/** Arguments that say how many items a field returns; its children cost that many times. */
const PAGE_SIZE_ARGS = ['first', 'last', 'k'] as const;

/**
 * Lists without a page-size argument, by `Type.field`: how long each is assumed to be.
 * A connection's `edges` and the images of `similar(k)` count once: their field's page
 * size already multiplied them. Lists not named here are assumed `DEFAULT_LIST_SIZE` long.
 */
export const ASSUMED_LIST_SIZES: Readonly<Record<string, number>> = {
  'Query.experiments': 100,
  'Query.labels': 100,
  'Query.registeredModels': 100,
  'Query.modelPlugins': 20,
  'Query.tuners': 20,
  'Mutation.predictBatch': 10,
  // Typical sizes, not worst cases: a run with more is still bounded by the deadline.
  'Run.children': 20,
  'Run.metricHistory': 200,
  'Run.classMetrics': 20,
  'Run.latestMetrics': 10,
  'Run.params': 20,
  'Run.tags': 10,
  'RegisteredModel.transitions': 100,
  'RegisteredModel.latestVersions': 4,
  'ModelVersion.transitions': 100,
  // A version is evaluated a few times (each evaluation is a deliberate job).
  'ModelVersion.evaluations': 5,
  'ModelEvaluation.classMetrics': 20,
  'ImageStats.formats': 3,
  'SimilarImages.images': 1,
  // topK: null lists every class.
  'Prediction.probabilities': 20,
};
const DEFAULT_LIST_SIZE = 20;

/**
 * What resolving a field costs besides reading a property (1): a root field runs at
 * least one query (10); fields that scan a table, search vectors or read files cost more.
 * Roughly one unit per 10 µs of work on a small machine: the dashboard's heaviest query
 * (200 runs with params, metrics and trials) costs ~25,000 and takes ~0.3 s.
 * A field may declare its own with type-graphql's `complexity` option, which wins.
 */
export const FIELD_COSTS: Readonly<Record<string, number>> = {
  // Three full scans of `images` (counted per alias, computed once per request).
  'Query.imageStats': 2500,
  'Query.labels': 100,
  'Query.runs': 50,
  'Experiment.runs': 50,
  'Experiment.runCount': 10,
  'Label.images': 10,
  'Image.similar': 200,
  'Prediction.similar': 200,
  'Run.children': 5,
  'Run.params': 5,
  'Run.tags': 5,
  'Run.latestMetrics': 5,
  'Run.metricHistory': 5,
  'Run.metricKeys': 5,
  'Run.classMetrics': 10,
  'Run.confusionMatrix': 10,
  'Run.registeredVersions': 5,
  'Run.experiment': 5,
  'ModelVersion.run': 5,
  'ModelVersion.transitions': 5,
  'RegisteredModel.versions': 10,
  'RegisteredModel.latestVersions': 10,
  'RegisteredModel.transitions': 5,
  'RegisteredModel.champion': 5,
};
const ROOT_FIELD_COST = 10;
const ROOT_TYPES = new Set(['Query', 'Mutation', 'Subscription']);

/**
 * graphql-query-complexity's estimator for this schema: each field node counts (so every
 * alias does), at its cost from FIELD_COSTS, plus its children's cost times its page size
 * (`first`, `k`: the value sent, else the argument's default) or, for a list
 * without one, its assumed length. `images(first: 1000) { edges { node { id } } }`
 * costs about 3,000; introspection (GraphiQL's schema query) costs nothing: it is bounded
 * by the schema.
 *
 * ```ts
 * import { getComplexity } from 'graphql-query-complexity';
 * const cost = getComplexity({ schema, query: parse('{ imageStats { totalCount } }'), estimators: [menagerieCost()] });
 * // 2501
 * ```
 */
export function menagerieCost(): ComplexityEstimator {
  return ({ type, field, args, childComplexity }) => {
    if (field.name.startsWith('__') || type.name.startsWith('__')) return 0;
    const key = `${type.name}.${field.name}`;
    const declared = field.extensions['complexity'];
    const own =
      typeof declared === 'number'
        ? declared
        : (FIELD_COSTS[key] ?? (ROOT_TYPES.has(type.name) ? ROOT_FIELD_COST : 1));
    return own + times(key, field, args) * childComplexity;
  };
}

function times(
  key: string,
  field: GraphQLField<unknown, unknown>,
  args: Readonly<Record<string, unknown>>,
): number {
  for (const name of PAGE_SIZE_ARGS) {
    const value = args[name];
    if (typeof value === 'number' && Number.isFinite(value)) return Math.max(1, value);
  }
  const type = getNullableType(field.type);
  if (!isListType(type) || !isObjectType(getNamedType(type))) return 1;
  if (key.endsWith('.edges') && key.split('.')[0]!.endsWith('Connection')) return 1;
  return ASSUMED_LIST_SIZES[key] ?? DEFAULT_LIST_SIZE;
}
