import type { ApolloServerPlugin } from '@apollo/server';
import type { GraphQLSchema } from 'graphql';
import { checkQueryLimits, type QueryLimits } from './query-limits.js';

/**
 * Refuses an operation over the depth or cost limit once Apollo has resolved it, before
 * it runs: the request fails as a whole, with QUERY_TOO_DEEP or QUERY_TOO_COMPLEX and
 * their status (400). Subscriptions get the same check in websocket.ts.
 */
export function queryLimitsPlugin(schema: GraphQLSchema, limits: QueryLimits): ApolloServerPlugin {
  return {
    async requestDidStart() {
      return {
        async didResolveOperation({ request, document }) {
          const error = checkQueryLimits(
            schema,
            document,
            request.operationName,
            request.variables,
            limits,
          );
          if (error) throw error;
        },
      };
    },
  };
}
