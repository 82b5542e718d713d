// The GraphiQL playground, bundled by Vite (server/playground.ts) so it loads with no CDN.
// Plain JavaScript: it runs in the browser, outside the server's TypeScript program.
import { GraphiQL } from 'graphiql';
import 'graphiql/setup-workers/vite';
import 'graphiql/style.css';
import { getOperationAST, parse } from 'graphql';
import { createClient } from 'graphql-ws';
import { createElement } from 'react';
import { createRoot } from 'react-dom/client';
import { EXAMPLES } from './examples.js';

const { document, location, fetch } = globalThis;
const endpoint = `${location.origin}/graphql`;

function isSubscription(query, operationName) {
  try {
    return getOperationAST(parse(query), operationName)?.operation === 'subscription';
  } catch {
    return false;
  }
}

async function* subscribe(params, headers) {
  const client = createClient({
    url: endpoint.replace(/^http/, 'ws'),
    connectionParams: headers.authorization ? { authorization: headers.authorization } : {},
  });
  try {
    yield* client.iterate(params);
  } finally {
    await client.dispose();
  }
}

function fetcher(params, options = {}) {
  const headers = options.headers ?? {};
  if (isSubscription(params.query, params.operationName)) return subscribe(params, headers);
  return fetch(endpoint, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...headers },
    body: JSON.stringify(params),
  }).then((response) => response.json());
}

createRoot(document.getElementById('root')).render(
  createElement(GraphiQL, { fetcher, defaultTabs: EXAMPLES, shouldPersistHeaders: false }),
);
