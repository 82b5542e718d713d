import type { ApolloServerPlugin } from '@apollo/server';
import {
  defaultFieldResolver,
  isObjectType,
  type GraphQLFieldResolver,
  type GraphQLSchema,
} from 'graphql';
import { ERRORS } from '../core/errors.js';
import type { GraphQLContext } from '../schema/context.js';

const isPromise = (value: unknown): value is Promise<unknown> =>
  typeof (value as Promise<unknown> | null)?.then === 'function';

/**
 * Holds every query to its context's deadline: once it has passed, no further resolver
 * starts (each throws REQUEST_TIMEOUT), and a resolver still pending is answered with
 * REQUEST_TIMEOUT at the deadline instead of being waited for. Mutations and
 * subscriptions run to their end: cutting a write short would answer "failed" for work
 * that happened. Wraps the schema's resolvers in place, HTTP and WebSocket alike.
 */
export function enforceDeadlines(schema: GraphQLSchema): void {
  for (const type of Object.values(schema.getTypeMap())) {
    if (!isObjectType(type) || type.name.startsWith('__')) continue;
    for (const field of Object.values(type.getFields())) {
      const resolve: GraphQLFieldResolver<unknown, GraphQLContext> =
        field.resolve ?? defaultFieldResolver;
      field.resolve = (source, args, context: GraphQLContext, info) => {
        const deadline = context.deadline;
        if (!deadline || info.operation.operation !== 'query') {
          return resolve(source, args, context, info);
        }
        deadline.check();
        const result = resolve(source, args, context, info);
        return isPromise(result) ? deadline.race(result) : result;
      };
    }
  }
}

/**
 * Answers a query stopped by its deadline as a failure of the whole request: one
 * REQUEST_TIMEOUT error, no partial data, status 503 (the fields it stopped would
 * otherwise each report it). Frees the deadline's timer when any response is sent.
 */
export function deadlinePlugin(): ApolloServerPlugin<GraphQLContext> {
  return {
    async requestDidStart() {
      return {
        async willSendResponse({ contextValue, response }) {
          contextValue.deadline?.dispose();
          if (response.body.kind !== 'single') return;
          const timedOut = response.body.singleResult.errors?.find(
            (e) => e.extensions?.['code'] === 'REQUEST_TIMEOUT',
          );
          if (!timedOut) return;
          response.body.singleResult = {
            errors: [{ message: timedOut.message, extensions: timedOut.extensions }],
          };
          response.http.status = ERRORS.REQUEST_TIMEOUT.status;
        },
      };
    },
  };
}
