import { initGraphQLTada } from 'gql.tada';
import type { introspection } from './graphql-env.js';

/**
 * Builds the dashboard's GraphQL documents, typed from schema/schema.graphql: the result and
 * variables of each come from the schema (through the generated graphql-env.d.ts), so a
 * changed field is a type error in the page that reads it. Fragments are not masked: a
 * fragment's fields read as plain fields of the result.
 *
 * ```ts
 * import { graphql, type ResultOf } from './graphql.js';
 *
 * const SERVING_QUERY = graphql(`
 *   query Serving {
 *     serving {
 *       modelName
 *       loadedAt
 *     }
 *   }
 * `);
 * type Serving = ResultOf<typeof SERVING_QUERY>['serving']; // { modelName: string; loadedAt: string | null }
 * ```
 */
export const graphql = initGraphQLTada<{
  introspection: introspection;
  scalars: {
    /** Milliseconds since the Unix epoch as a decimal string: an int64 outgrows a number. */
    Timestamp: string;
    /** Sent as a multipart request by urql's fetchExchange. */
    Upload: File;
  };
  disableMasking: true;
}>();

export type { ResultOf } from 'gql.tada';

/** The values of a schema enum: `EnumOf<'Split'>` is `'TEST' | 'TRAIN' | 'VAL'`. */
export type EnumOf<Name extends string> = ReturnType<typeof graphql.scalar<Name>>;
