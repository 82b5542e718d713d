import {
  cacheExchange,
  Client,
  fetchExchange,
  makeOperation,
  mapExchange,
  subscriptionExchange,
} from '@urql/core';
import { createClient as createWsClient } from 'graphql-ws';
import type { Ref } from 'vue';

/** The API's path on this origin: the server serves the dashboard beside it. */
export const GRAPHQL_PATH = '/graphql';

/**
 * The urql client: JSON POSTs and multipart uploads over fetch, subscriptions over
 * graphql-ws on the same path. The token goes on mutations only: the server refuses a
 * request with an unknown token outright, so a stale token must not break reading.
 */
export function createApiClient(token: Readonly<Ref<string>>): Client {
  const wsUrl = new URL(GRAPHQL_PATH, window.location.href);
  wsUrl.protocol = wsUrl.protocol === 'https:' ? 'wss:' : 'ws:';
  const ws = createWsClient({ url: wsUrl.href, lazy: true, retryAttempts: 3 });

  const authorize = mapExchange({
    onOperation(operation) {
      if (operation.kind !== 'mutation' || token.value === '') return operation;
      const fetchOptions =
        typeof operation.context.fetchOptions === 'function'
          ? operation.context.fetchOptions()
          : (operation.context.fetchOptions ?? {});
      return makeOperation(operation.kind, operation, {
        ...operation.context,
        fetchOptions: {
          ...fetchOptions,
          headers: {
            ...(fetchOptions.headers as Record<string, string> | undefined),
            authorization: `Bearer ${token.value}`,
          },
        },
      });
    },
  });

  return new Client({
    url: GRAPHQL_PATH,
    // Uploads are multipart, a "simple" request: Apollo's CSRF guard wants this header.
    fetchOptions: { headers: { 'apollo-require-preflight': 'true' } },
    requestPolicy: 'cache-and-network',
    // POST for everything: one request shape for the server's CSRF rule and its logs.
    preferGetMethod: false,
    exchanges: [
      cacheExchange,
      authorize,
      fetchExchange,
      subscriptionExchange({
        forwardSubscription: (request) => ({
          subscribe: (sink) => ({
            unsubscribe: ws.subscribe({ ...request, query: request.query ?? '' }, sink),
          }),
        }),
      }),
    ],
  });
}
