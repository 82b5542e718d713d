import { describe, expect, it } from 'vitest';
import { startTestServer } from '../helpers/server.js';

describe('playground', () => {
  // The first run bundles GraphiQL with Vite (tens of seconds); later runs reuse the bundle.
  it(
    'serves GraphiQL from this server to browsers at /graphql, with no CDN',
    { timeout: 300_000 },
    async () => {
      const t = await startTestServer({ playground: true });
      try {
        const page = await t.get('/graphql', { accept: 'text/html,application/xhtml+xml' });
        expect(page.status).toBe(200);
        expect(page.headers.get('content-type')).toMatch(/^text\/html/);
        const html = await page.text();
        expect(html).toContain('<div id="root">');
        expect(html).not.toMatch(/(src|href)="(https?:)?\/\//);
        const assets = [...html.matchAll(/(?:src|href)="(\/playground\/[^"]+)"/g)].map(
          (m) => m[1]!,
        );
        expect(assets.some((a) => a.endsWith('.js'))).toBe(true);
        for (const asset of assets) {
          const res = await t.get(asset);
          expect(res.status, asset).toBe(200);
          const text = await res.text();
          // No script or style is fetched from elsewhere at runtime.
          expect(text).not.toMatch(/from\s*["']https?:\/\/|import\(["']https?:\/\//);
          if (asset.endsWith('.js')) expect(text).toContain('Relabel');
        }
        // API clients at the same URL still get GraphQL.
        const api = await t.gql<{ labels: unknown[] }>('{ labels { name } }');
        expect(api.data?.labels).toEqual([]);
      } finally {
        await t.dispose();
      }
    },
  );
});
