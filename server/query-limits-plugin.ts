import type { ApolloServerPlugin } from '@apollo/server';
import type { GraphQLSchema } from 'graphql';
import { checkQueryCost, type QueryLimits } from './query-limits.js';

/**
 * Refuses an operation over the cost limit once Apollo has resolved it, before it runs:
 * the request fails as a whole, with QUERY_TOO_COMPLEX and its status (400). Depth,
 * aliases and directives are validation rules (queryLimitRules), tokens are counted
 * before parsing (refuseLongQueries); subscriptions get the same checks in websocket.ts.
 */
export function queryLimitsPlugin(schema: GraphQLSchema, limits: QueryLimits): ApolloServerPlugin {
  return {
    async requestDidStart() {
      return {
        async didResolveOperation({ request, document }) {
          const error = checkQueryCost(
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
