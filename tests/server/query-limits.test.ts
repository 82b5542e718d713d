import fs from 'node:fs';
import path from 'node:path';
import { Kind, parse, print, validate, type DocumentNode } from 'graphql';
import { createClient } from 'graphql-ws';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import type { ImageStats } from '../../data/image-service.js';
import { buildMenagerieSchema } from '../../schema/build-schema.js';
import {
  checkQueryCost,
  checkTokens,
  DEFAULT_QUERY_LIMITS,
  queryLimitRules,
} from '../../server/query-limits.js';
import { REPO_ROOT } from '../helpers/fixtures.js';
import { startTestServer, type TestServer } from '../helpers/server.js';

let t: TestServer;
beforeAll(async () => {
  t = await startTestServer({ computeEmbeddings: false });
});
afterAll(() => t.dispose());

const codeOf = (res: { errors?: { extensions?: { code?: string } }[] }) =>
  res.errors?.[0]?.extensions?.code;

const STATS: ImageStats = {
  totalCount: 0,
  totalBytes: 0,
  splits: { train: 0, val: 0, test: 0, total: 0 },
  formats: [],
  labelCount: 0,
};

/** A server whose image service counts `stats()` calls and answers them as `answer` says. */
async function serverCountingStats(answer: () => Promise<ImageStats> = async () => STATS) {
  const calls = { stats: 0 };
  const server = await startTestServer(
    { computeEmbeddings: false },
    {
      services: {
        images: {
          ...t.server.services.images,
          stats: () => {
            calls.stats++;
            return answer();
          },
        },
      },
    },
  );
  return { server, calls };
}

const aliases = (n: number, field: string) =>
  Array.from({ length: n }, (_, i) => `a${i}: ${field}`).join(' ');

describe('the cost of a query counts every alias and resolver', () => {
  it('3,000 aliased imageStats (the 98 KB query) are refused before any resolver runs', async () => {
    const { server, calls } = await serverCountingStats();
    try {
      const query = `{ ${aliases(3000, 'imageStats { labelCount }')} }`;
      expect(query.length).toBeGreaterThan(90_000);
      const res = await server.gql(query);
      expect(res.status).toBe(400);
      expect(codeOf(res)).toBe('QUERY_TOO_COMPLEX');
      expect(calls.stats).toBe(0);
      expect((await server.get('/healthz')).status).toBe(200);
    } finally {
      await server.dispose();
    }
  });

  it('many aliases under the token limit are refused for their number', async () => {
    const res = await t.gql(`{ ${aliases(200, 'imageStats { labelCount }')} }`);
    expect(codeOf(res)).toBe('QUERY_TOO_COMPLEX');
    expect(res.errors?.[0]?.message).toMatch(/alias/i);
  });

  it('an expensive resolver weighs more than a plain field: 25 imageStats are over the cost', async () => {
    const res = await t.gql(`{ ${aliases(25, 'imageStats { labelCount totalCount }')} }`);
    expect(codeOf(res)).toBe('QUERY_TOO_COMPLEX');
    expect(res.errors?.[0]?.message).toMatch(/cost/);
  });

  it('a document of too many tokens is refused, whatever its shape', async () => {
    const fields = Array.from({ length: 3000 }, () => 'name').join(' ');
    const res = await t.gql(`{ labels { ${fields} } }`);
    expect(res.status).toBe(400);
    expect(codeOf(res)).toBe('QUERY_TOO_COMPLEX');
    expect(res.errors?.[0]?.message).toMatch(/tokens/);
  });

  it('too many directives are refused', async () => {
    const fields = Array.from({ length: 60 }, () => 'name @include(if: true)').join(' ');
    const res = await t.gql(`{ labels { ${fields} } }`);
    expect(codeOf(res)).toBe('QUERY_TOO_COMPLEX');
    expect(res.errors?.[0]?.message).toMatch(/directive/i);
  });

  it.each([
    ['runs(first: 1000) { edges { node { children { id name status } } } }', 'Run.children'],
    [
      'runs(first: 1000) { edges { node { metricHistory(key: "loss") { value } } } }',
      'metricHistory',
    ],
    [
      'registeredModels { versions(first: 1000) { edges { node { transitions { id } } } } }',
      'registeredModels',
    ],
  ])('a list without `first` has an assumed size: { %s } is over the cost', async (query) => {
    const res = await t.gql(`{ ${query} }`);
    expect(codeOf(res)).toBe('QUERY_TOO_COMPLEX');
  });

  it('an ordinary page still passes', async () => {
    const res = await t.gql(
      '{ images(first: 100) { edges { node { id label { name } thumbnailUrl } } } imageStats { totalCount } labels { name } }',
    );
    expect(res.errors).toBeUndefined();
  });

  it('one document costs what its variables say each time, remembered or not', async () => {
    // Nested pages: 400 × 400 images' fields is far over the limit, 5 × 5 is not.
    const query =
      'query Pages($n: Int!) { labels { name images(first: $n) { edges { node { id } } } } images(first: $n) { edges { node { id } } } }';
    const schema = await buildMenagerieSchema();
    const document = parse(query);
    const check = (n: number) =>
      checkQueryCost(schema, document, 'Pages', { n }, DEFAULT_QUERY_LIMITS);
    for (let round = 0; round < 2; round++) {
      expect(check(5)).toBeNull();
      expect(check(100_000)?.extensions?.['code']).toBe('QUERY_TOO_COMPLEX');
    }
    const small = await t.gql(query, { n: 5 });
    expect(codeOf(small)).not.toBe('QUERY_TOO_COMPLEX');
    expect(codeOf(await t.gql(query, { n: 100_000 }))).toBe('QUERY_TOO_COMPLEX');
    expect(codeOf(await t.gql(query, { n: 5 }))).not.toBe('QUERY_TOO_COMPLEX');
  });

  it('over the WebSocket the same limits hold, with the same code', async () => {
    const client = createClient({
      url: t.server.url.replace(/^http/, 'ws'),
      webSocketImpl: WebSocket,
      retryAttempts: 0,
    });
    try {
      const results = client.iterate({ query: `{ ${aliases(200, 'imageStats { labelCount }')} }` });
      const error = await results.next().then(
        () => undefined,
        (e: unknown) => e as { extensions?: { code?: string } }[],
      );
      expect(error?.[0]?.extensions?.code).toBe('QUERY_TOO_COMPLEX');
    } finally {
      await client.dispose();
    }
  });
});

describe("the dashboard's own operations", () => {
  const GRAPHQL_DIR = path.join(REPO_ROOT, 'client', 'src', 'graphql');
  // The largest values the dashboard sends (200 runs a page, 24 similar images, top 10).
  const VARIABLES = { first: 200, k: 24, topK: 10 };

  it('each passes every query limit with the defaults', async () => {
    const schema = await buildMenagerieSchema();
    let checked = 0;
    for (const file of fs.readdirSync(GRAPHQL_DIR).filter((f) => /^[^.]+\.ts$/.test(f))) {
      const module = (await import(path.join(GRAPHQL_DIR, file))) as Record<string, unknown>;
      for (const [name, document] of Object.entries(module)) {
        if ((document as DocumentNode | null)?.kind !== Kind.DOCUMENT) continue;
        const doc = document as DocumentNode;
        const what = `${file}: ${name}`;
        expect(checkTokens(print(doc), DEFAULT_QUERY_LIMITS), what).toBeNull();
        expect(validate(schema, doc, queryLimitRules(DEFAULT_QUERY_LIMITS)), what).toEqual([]);
        expect(
          checkQueryCost(schema, doc, undefined, VARIABLES, DEFAULT_QUERY_LIMITS)?.message,
          what,
        ).toBeUndefined();
        checked++;
      }
    }
    expect(checked).toBeGreaterThanOrEqual(15);
  });
});

describe('expensive resolvers run once per request', () => {
  it('ten aliases of imageStats compute the statistics once', async () => {
    const { server, calls } = await serverCountingStats();
    try {
      const res = await server.gql(`{ ${aliases(10, 'imageStats { labelCount }')} }`);
      expect(res.errors).toBeUndefined();
      expect(Object.keys(res.data ?? {})).toHaveLength(10);
      expect(calls.stats).toBe(1);
    } finally {
      await server.dispose();
    }
  });
});

describe('a query past its deadline', () => {
  it('is answered REQUEST_TIMEOUT while its resolver still waits, and the server stays responsive', async () => {
    let release!: () => void;
    const held = new Promise<void>((resolve) => (release = resolve));
    const { server, calls } = await serverCountingStats(async () => {
      await held;
      return STATS;
    });
    const slow = await startTestServer(
      { computeEmbeddings: false, limits: { timeoutMs: 200 } },
      { services: { images: server.server.services.images } },
    );
    try {
      const answer = slow.gql('{ imageStats { totalCount } labels { name } }');
      const res = await answer;
      expect(res.status).toBe(503);
      expect(codeOf(res)).toBe('REQUEST_TIMEOUT');
      expect(res.errors?.[0]?.message).toMatch(/200 ms/);
      expect(res.data ?? null).toBeNull();
      expect(calls.stats).toBe(1);
      expect((await slow.get('/healthz')).status).toBe(200);
      // Mutations are not cut short: they run to the end, whatever they changed.
    } finally {
      release();
      await slow.dispose();
      await server.dispose();
    }
  }, 15_000);
});
