import type { ApolloServerPlugin } from '@apollo/server';
import { requestStore } from './request-log.js';

/** Puts the GraphQL operation's name on the request's log line once Apollo resolves it. */
export function requestLogPlugin(): ApolloServerPlugin {
  return {
    async requestDidStart() {
      return {
        async didResolveOperation({ operationName }) {
          const state = requestStore.getStore();
          if (state && operationName) state.operation = operationName;
        },
      };
    },
  };
}
