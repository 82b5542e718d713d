import type http from 'node:http';
import {
  parse,
  validate,
  type ExecutionArgs,
  type GraphQLError,
  type GraphQLSchema,
} from 'graphql';
import { useServer } from 'graphql-ws/use/ws';
import { WebSocketServer } from 'ws';
import { ERRORS, isMenagerieError } from '../core/errors.js';
import type { GraphQLContext, Role } from '../schema/context.js';
import type { createAuthenticator } from './auth.js';
import { checkQueryLimits, type QueryLimits } from './query-limits.js';

export interface SubscriptionServerOptions {
  httpServer: http.Server;
  /** The GraphQL endpoint's path: WebSocket upgrades are accepted there only. */
  path: string;
  schema: GraphQLSchema;
  limits: QueryLimits;
  authenticate: ReturnType<typeof createAuthenticator>;
  contextFor: (role: Role | null) => GraphQLContext;
}

/**
 * graphql-ws on the HTTP server, at the GraphQL path. A connection is authenticated once,
 * from `connectionParams.authorization`; an unknown token closes it with 4000 + its code's
 * status (4401 for UNAUTHENTICATED), as graphql-ws numbers its own closes. Each operation
 * is parsed, validated and held to the query limits, as over HTTP. `dispose` closes every
 * connection.
 */
export function createSubscriptionServer(
  options: SubscriptionServerOptions,
): ReturnType<typeof useServer> {
  const { schema, limits, authenticate, contextFor } = options;
  const wsServer = new WebSocketServer({ server: options.httpServer, path: options.path });
  return useServer(
    {
      schema,
      onConnect: (ctx) => {
        try {
          authenticate(connectionAuthorization(ctx.connectionParams));
          return true;
        } catch (error) {
          const code = isMenagerieError(error) ? error.code : 'INTERNAL_SERVER_ERROR';
          // Closed here because graphql-ws closes a refused connection with 4403 whatever
          // the reason; its own close after `false` is then a no-op.
          ctx.extra.socket.close(4000 + ERRORS[code].status, code);
          return false;
        }
      },
      onSubscribe: (ctx, _id, payload): ExecutionArgs | readonly GraphQLError[] => {
        let document;
        try {
          document = parse(payload.query);
        } catch (error) {
          return [error as GraphQLError];
        }
        const errors = validate(schema, document);
        if (errors.length > 0) return errors;
        const variables = payload.variables ?? {};
        const tooBig = checkQueryLimits(schema, document, payload.operationName, variables, limits);
        if (tooBig) return [tooBig];
        return {
          schema,
          document,
          operationName: payload.operationName,
          variableValues: variables,
          contextValue: contextFor(authenticate(connectionAuthorization(ctx.connectionParams))),
        };
      },
    },
    wsServer,
  );
}

function connectionAuthorization(params: Readonly<Record<string, unknown>> | undefined) {
  const value = params?.['authorization'] ?? params?.['Authorization'];
  return typeof value === 'string' ? value : undefined;
}
