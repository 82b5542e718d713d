import { createClient, type Client } from 'graphql-ws';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { startTestServer, TOKENS, type TestServer } from '../helpers/server.js';

let t: TestServer;
beforeAll(async () => {
  t = await startTestServer({
    computeEmbeddings: false,
    websocket: { maxPayload: 4096, maxConnections: 3 },
  });
});
afterAll(() => t.dispose());

const wsUrl = () => t.server.url.replace(/^http/, 'ws');

const clients: Client[] = [];
afterEach(async () => {
  await Promise.all(clients.splice(0).map((c) => c.dispose()));
});

function client(token?: string): Client {
  const c = createClient({
    url: wsUrl(),
    webSocketImpl: WebSocket,
    retryAttempts: 0,
    lazy: true,
    connectionParams: token ? { authorization: `Bearer ${token}` } : {},
  });
  clients.push(c);
  return c;
}

interface WsError {
  message: string;
  extensions?: { code?: string; requestId?: string };
}

/** The errors of an operation over graphql-ws: in its first result, or the ones it was refused with. */
async function errorsOf(c: Client, query: string): Promise<WsError[] | undefined> {
  const results = c.iterate<unknown>({ query });
  try {
    const first = await results.next();
    return (first.value as { errors?: WsError[] } | undefined)?.errors;
  } catch (error) {
    return error as WsError[];
  } finally {
    await results.return?.();
  }
}

describe('errors over the WebSocket carry the codes HTTP gives them', () => {
  it.each([
    {
      name: 'a mutation without a token → UNAUTHENTICATED',
      token: undefined,
      query: 'mutation { relabel(id: "1", label: "dog") { id } }',
      code: 'UNAUTHENTICATED',
    },
    {
      name: 'a mutation with a read token → FORBIDDEN',
      token: TOKENS.read,
      query: 'mutation { relabel(id: "1", label: "dog") { id } }',
      code: 'FORBIDDEN',
    },
    {
      name: 'a domain error in a resolver → its code (IMAGE_NOT_FOUND)',
      token: TOKENS.write,
      query: 'mutation { relabel(id: "999", label: "dog") { id } }',
      code: 'IMAGE_NOT_FOUND',
    },
    {
      name: 'a subscription to a run that does not exist → RUN_NOT_FOUND',
      token: undefined,
      query: 'subscription { runProgress(runId: "0123456789abcdef0123456789abcdef") { status } }',
      code: 'RUN_NOT_FOUND',
    },
    {
      name: 'an unknown field → QUERY_INVALID',
      token: undefined,
      query: '{ labels { password } }',
      code: 'QUERY_INVALID',
    },
    {
      name: 'bad syntax → QUERY_PARSE_FAILED',
      token: undefined,
      query: '{ labels { name }',
      code: 'QUERY_PARSE_FAILED',
    },
    {
      name: 'a bad argument → BAD_USER_INPUT',
      token: undefined,
      query: '{ image(id: "-1") { id } }',
      code: 'BAD_USER_INPUT',
    },
  ])('$name', async ({ token, query, code }) => {
    const errors = await errorsOf(client(token), query);
    expect(errors?.[0]?.extensions?.code, JSON.stringify(errors)).toBe(code);
  });

  it('an unexpected error is masked as INTERNAL_SERVER_ERROR, as over HTTP', async () => {
    const broken = await startTestServer(
      { computeEmbeddings: false },
      {
        services: {
          images: {
            ...t.server.services.images,
            stats: async () => {
              throw new Error('disk /secret/path exploded');
            },
          },
        },
      },
    );
    const c = createClient({
      url: broken.server.url.replace(/^http/, 'ws'),
      webSocketImpl: WebSocket,
      retryAttempts: 0,
    });
    try {
      const errors = await errorsOf(c, '{ imageStats { totalCount } }');
      expect(errors?.[0]?.extensions?.code).toBe('INTERNAL_SERVER_ERROR');
      expect(JSON.stringify(errors)).not.toMatch(/secret|exploded/);
    } finally {
      await c.dispose();
      await broken.dispose();
    }
  });
});

/** A raw WebSocket to the GraphQL endpoint, and the close code/reason it ends with. */
function rawSocket() {
  const socket = new WebSocket(wsUrl(), 'graphql-transport-ws');
  const closed = new Promise<{ code: number; reason: string }>((resolve) =>
    socket.once('close', (code, reason) => resolve({ code, reason: reason.toString() })),
  );
  const opened = new Promise<void>((resolve, reject) => {
    socket.once('open', () => resolve());
    socket.once('error', reject);
  });
  return { socket, closed, opened };
}

describe('WebSocket limits', () => {
  it('a message over maxPayload closes the connection 1009 (message too big)', async () => {
    const { socket, closed, opened } = rawSocket();
    await opened;
    socket.send(JSON.stringify({ type: 'connection_init', payload: { pad: 'x'.repeat(10_000) } }));
    expect((await closed).code).toBe(1009);
    expect((await t.get('/healthz')).status).toBe(200);
  });

  it('connections past the cap are closed 4503 WEBSOCKET_LIMIT; a freed place admits again', async () => {
    const open = [rawSocket(), rawSocket(), rawSocket()];
    await Promise.all(open.map((s) => s.opened));
    const extra = rawSocket();
    const refused = await extra.closed;
    expect(refused).toEqual({ code: 4503, reason: 'WEBSOCKET_LIMIT' });
    open[0]!.socket.close();
    await open[0]!.closed;
    const again = rawSocket();
    await again.opened;
    again.socket.send(JSON.stringify({ type: 'connection_init' }));
    const ack = await new Promise<string>((resolve) =>
      again.socket.once('message', (data: Buffer) => resolve(data.toString())),
    );
    expect(JSON.parse(ack)).toEqual({ type: 'connection_ack' });
    for (const s of [...open.slice(1), again]) s.socket.close();
    await Promise.all([...open.slice(1), again].map((s) => s.closed));
  });
});
