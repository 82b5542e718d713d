import 'reflect-metadata';
import { lexicographicSortSchema, printSchema, type GraphQLSchema } from 'graphql';
import { buildSchema, type ClassType, type NonEmptyArray, type PubSub } from 'type-graphql';
import { guardMutations } from './access.js';
import {
  EvaluationErrorResolver,
  EvaluationResolver,
  ModelVersionEvaluationResolver,
} from './resolvers/evaluation-resolver.js';
import { ExperimentResolver } from './resolvers/experiment-resolver.js';
import { ImageResolver } from './resolvers/image-resolver.js';
import { JobResolver } from './resolvers/job-resolver.js';
import { LabelResolver } from './resolvers/label-resolver.js';
import { ModelVersionResolver } from './resolvers/model-version-resolver.js';
import { PluginResolver } from './resolvers/plugin-resolver.js';
import { ImageSimilarResolver, PredictionResolver } from './resolvers/prediction-resolver.js';
import { RegistryResolver } from './resolvers/registry-resolver.js';
import { ModelVersionRunResolver, RunResolver } from './resolvers/run-resolver.js';

/**
 * Every resolver class the API serves. A new part of the API adds its resolver here (and
 * its services to MenagerieServices); `npm run schema` then rewrites schema.graphql.
 */
export const RESOLVERS: NonEmptyArray<ClassType> = [
  ImageResolver,
  LabelResolver,
  PredictionResolver,
  ImageSimilarResolver,
  RegistryResolver,
  ModelVersionResolver,
  ExperimentResolver,
  RunResolver,
  ModelVersionRunResolver,
  EvaluationResolver,
  EvaluationErrorResolver,
  ModelVersionEvaluationResolver,
  PluginResolver,
  JobResolver,
];

/**
 * Builds the executable schema from resolver classes, with every mutation behind the
 * access guard. Tests, the server and the SDL file all come from this one function.
 *
 * ```ts
 * const schema = await buildMenagerieSchema();
 * console.log(printMenagerieSchema(schema));
 * ```
 */
export async function buildMenagerieSchema(
  resolvers: NonEmptyArray<ClassType> = RESOLVERS,
): Promise<GraphQLSchema> {
  const schema = await buildSchema({
    resolvers,
    validate: false,
    emitSchemaFile: false,
    pubSub: NO_TOPICS,
  });
  guardMutations(schema);
  return schema;
}

/**
 * type-graphql insists on a PubSub once there is a subscription. Ours subscribe through
 * `context.services.events` (`@Subscription({ subscribe })`), so the schema holds no
 * process-wide channel; `topics:` subscriptions fail loudly instead.
 */
const NO_TOPICS: PubSub = {
  publish() {
    throw new Error('publish through context.services.events');
  },
  subscribe() {
    throw new Error('use @Subscription({ subscribe }) with context.services.events, not topics');
  },
};

/** The SDL, types sorted by name so additions make small diffs. */
export function printMenagerieSchema(schema: GraphQLSchema): string {
  return `${printSchema(lexicographicSortSchema(schema))}\n`;
}
