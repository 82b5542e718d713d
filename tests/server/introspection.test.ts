import fs from 'node:fs';
import { createClient } from 'graphql-ws';
import { describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { tempDir } from '../helpers/fixtures.js';
import { startTestServer } from '../helpers/server.js';

const INTROSPECT = '{ __schema { queryType { name } } }';

describe('introspection', () => {
  it('is on by default', async () => {
    const t = await startTestServer({ computeEmbeddings: false });
    try {
      const res = await t.gql<{ __schema: { queryType: { name: string } } }>(INTROSPECT);
      expect(res.data?.__schema.queryType.name).toBe('Query');
    } finally {
      await t.dispose();
    }
  });

  it('switched off, is refused over HTTP and WebSocket; queries still work', async () => {
    const t = await startTestServer({ computeEmbeddings: false, introspection: false });
    try {
      const res = await t.gql(INTROSPECT);
      expect(res.status).toBe(400);
      expect(res.errors?.[0]?.extensions?.code).toBe('QUERY_INVALID');
      expect(res.errors?.[0]?.message).toMatch(/introspection is switched off/i);
      const typename = await t.gql('{ __type(name: "Query") { name } }');
      expect(typename.errors?.[0]?.extensions?.code).toBe('QUERY_INVALID');
      expect((await t.gql('{ labels { name __typename } }')).errors).toBeUndefined();

      const client = createClient({
        url: t.server.url.replace(/^http/, 'ws'),
        webSocketImpl: WebSocket,
        retryAttempts: 0,
      });
      try {
        const results = client.iterate({ query: INTROSPECT });
        const errors = await results.next().then(
          () => undefined,
          (e: unknown) => e as { extensions?: { code?: string } }[],
        );
        expect(errors?.[0]?.extensions?.code).toBe('QUERY_INVALID');
      } finally {
        await client.dispose();
      }
    } finally {
      await t.dispose();
    }
  });

  it('switched off, the playground says so instead of loading a blank schema', async () => {
    // No bundle is built: the page that explains needs none.
    const { dir, remove } = tempDir('menagerie-playground-');
    const t = await startTestServer({
      computeEmbeddings: false,
      introspection: false,
      playground: { buildDir: dir, buildOnDemand: false },
    });
    try {
      const page = await t.get('/graphql', { accept: 'text/html' });
      expect(page.status).toBe(200);
      expect(page.headers.get('content-type')).toMatch(/^text\/html/);
      const html = await page.text();
      expect(html).toMatch(/introspection is switched off/i);
      expect(html).toMatch(/--no-introspection/);
      expect(fs.readdirSync(dir)).toEqual([]);
    } finally {
      await t.dispose();
      remove();
    }
  });
});
