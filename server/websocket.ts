import { randomUUID } from 'node:crypto';
import type http from 'node:http';
import {
  GraphQLError,
  parse,
  specifiedRules,
  validate,
  type ExecutionArgs,
  type ExecutionResult,
  type GraphQLFormattedError,
  type GraphQLSchema,
  type ValidationRule,
} from 'graphql';
import { useServer } from 'graphql-ws/use/ws';
import { WebSocketServer } from 'ws';
import { ERRORS, isMenagerieError } from '../core/errors.js';
import type { GraphQLContext, Role } from '../schema/context.js';
import type { createAuthenticator } from './auth.js';
import { formatError } from './error-format.js';
import { checkQueryCost, checkTokens, queryLimitRules, type QueryLimits } from './query-limits.js';
import { requestStore, type Logger, type RequestState } from './request-log.js';

export interface WebSocketLimits {
  /** Largest message accepted, in bytes (default 1 MB); a larger one closes the socket 1009. */
  maxPayload: number;
  /** Connections held at once (default 1,000); one more is closed 4503 WEBSOCKET_LIMIT. */
  maxConnections: number;
}

export const DEFAULT_WEBSOCKET_LIMITS: WebSocketLimits = {
  maxPayload: 1024 * 1024,
  maxConnections: 1000,
};

export interface SubscriptionServerOptions {
  httpServer: http.Server;
  /** The GraphQL endpoint's path: WebSocket upgrades are accepted there only. */
  path: string;
  schema: GraphQLSchema;
  limits: QueryLimits;
  websocket: WebSocketLimits;
  /** Validation rules besides graphql's and the query limits' (e.g. no introspection). */
  validationRules: readonly ValidationRule[];
  authenticate: ReturnType<typeof createAuthenticator>;
  contextFor: (role: Role | null) => GraphQLContext;
  log: Logger;
}

/**
 * graphql-ws on the HTTP server, at the GraphQL path. A connection is authenticated once,
 * from `connectionParams.authorization`; an unknown token closes it with 4000 + its code's
 * status (4401 for UNAUTHENTICATED), as graphql-ws numbers its own closes, and so does a
 * connection past the cap (4503 WEBSOCKET_LIMIT). Each operation is parsed, validated and
 * held to the query limits as over HTTP, and its errors leave formatted as over HTTP: a
 * catalogued `extensions.code`, anything unexpected masked (and logged). `dispose`
 * closes every connection.
 */
export function createSubscriptionServer(
  options: SubscriptionServerOptions,
): ReturnType<typeof useServer> {
  const { schema, limits, authenticate, contextFor, log } = options;
  const wsServer = new WebSocketServer({
    server: options.httpServer,
    path: options.path,
    maxPayload: options.websocket.maxPayload,
  });
  // Registered before graphql-ws's own listener, so a refused socket is closed first.
  wsServer.on('connection', (socket) => {
    if (wsServer.clients.size > options.websocket.maxConnections)
      socket.close(4000 + ERRORS.WEBSOCKET_LIMIT.status, 'WEBSOCKET_LIMIT');
    // ws has already closed the socket 1009 for a message over maxPayload; graphql-ws
    // would log it as an "internal error" of ours. It is the client's: say so instead.
    const emit = socket.emit.bind(socket);
    socket.emit = (event: string | symbol, ...args: unknown[]) => {
      const code = (args[0] as { code?: unknown } | undefined)?.code;
      if (event !== 'error' || code !== 'WS_ERR_UNSUPPORTED_MESSAGE_LENGTH')
        return emit(event, ...args);
      log({
        level: 'warn',
        msg: 'websocket',
        error: `a message over ${options.websocket.maxPayload} bytes: closed 1009`,
      });
      return true;
    };
  });
  const rules = [...specifiedRules, ...queryLimitRules(limits), ...options.validationRules];

  /** Errors as formatError leaves them over HTTP, under a request id the log line shares. */
  const format = (errors: readonly GraphQLError[]): GraphQLFormattedError[] => {
    const state: RequestState = { id: `ws-${randomUUID()}`, errorCodes: [] };
    const formatted = requestStore.run(state, () =>
      errors.map((error) => formatError(error.toJSON(), error)),
    );
    if (state.failure) {
      log({
        level: 'error',
        msg: 'websocket',
        requestId: state.id,
        errors: state.errorCodes,
        failure: state.failure,
      });
    }
    return formatted;
  };
  const coded = (error: GraphQLError, code: string) =>
    new GraphQLError(error.message, {
      nodes: error.nodes,
      source: error.source,
      positions: error.positions,
      path: error.path,
      originalError: error.originalError,
      extensions: { code, ...error.extensions },
    });

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
        const tooLong = checkTokens(payload.query, limits);
        if (tooLong) return [tooLong];
        let document;
        try {
          document = parse(payload.query, { maxTokens: limits.maxTokens });
        } catch (error) {
          return [coded(error as GraphQLError, 'GRAPHQL_PARSE_FAILED')];
        }
        const errors = validate(schema, document, rules);
        if (errors.length > 0) return errors.map((e) => coded(e, 'GRAPHQL_VALIDATION_FAILED'));
        const variables = payload.variables ?? {};
        const tooBig = checkQueryCost(schema, document, payload.operationName, variables, limits);
        if (tooBig) return [tooBig];
        return {
          schema,
          document,
          operationName: payload.operationName,
          variableValues: variables,
          contextValue: contextFor(authenticate(connectionAuthorization(ctx.connectionParams))),
        };
      },
      onError: (_ctx, _id, _payload, errors) => format(errors),
      onNext: (_ctx, _id, _payload, _args, result: ExecutionResult) => {
        if (!result.errors?.length) return result;
        // Errors with no path are the operation's (variables that do not coerce), as
        // Apollo labels them: BAD_USER_INPUT.
        const errors = result.errors.map((e) =>
          e.path === undefined && !e.originalError ? coded(e, 'BAD_USER_INPUT') : e,
        );
        return { ...result, errors: format(errors) };
      },
    },
    wsServer,
  );
}

function connectionAuthorization(params: Readonly<Record<string, unknown>> | undefined) {
  const value = params?.['authorization'] ?? params?.['Authorization'];
  return typeof value === 'string' ? value : undefined;
}
