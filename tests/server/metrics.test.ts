import os from 'node:os';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makeImage } from '../helpers/fixtures.js';
import { startTestServer, TOKENS, type TestServer } from '../helpers/server.js';
import { PREDICT, registerTinyModel } from '../helpers/serving.js';

let t: TestServer;
let imageId: number;

beforeAll(async () => {
  t = await startTestServer({ computeEmbeddings: false });
  imageId = (await t.server.services.images.add(await makeImage(3), { label: 'cat' })).image.id;
  const version = await registerTinyModel(t, 'faces', { labels: ['cat', 'dog', 'wild'] });
  await t.server.services.registry.promoteChampion('faces', version.version);
  await t.server.services.serving.championMoved('faces');
});
afterAll(() => t.dispose());

/** The value of one sample line, `name{labels} value`, or undefined. */
function sample(
  text: string,
  name: string,
  labels: Record<string, string> = {},
): number | undefined {
  for (const line of text.split('\n')) {
    if (line.startsWith('#')) continue;
    const match = /^([a-zA-Z_:][\w:]*)(\{[^}]*\})? (\S+)$/.exec(line);
    if (!match || match[1] !== name) continue;
    const present = Object.fromEntries(
      [...(match[2] ?? '').matchAll(/(\w+)="([^"]*)"/g)].map((m) => [m[1], m[2]]),
    );
    if (Object.entries(labels).every(([k, v]) => present[k] === v)) return Number(match[3]);
  }
  return undefined;
}

describe('/metrics', () => {
  it('answers Prometheus text from loopback without a token', async () => {
    await t.gql('query Labels { labels { name } }');
    await t.gql('query Labels { labels { name } }');
    await t.upload(PREDICT, { file: null }, [
      { path: 'variables.file', file: { bytes: await makeImage(9) } },
    ]);
    await t.get(`/images/${imageId}/thumb?size=64`);
    await t.get(`/images/${imageId}/thumb?size=64`);

    const res = await t.get('/metrics');
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/^text\/plain; version=0\.0\.4/);
    const text = await res.text();

    const labels = { operation: 'Labels', type: 'query' };
    expect(sample(text, 'menagerie_graphql_operations_total', labels)).toBe(2);
    expect(sample(text, 'menagerie_graphql_operation_duration_seconds_count', labels)).toBe(2);
    expect(sample(text, 'menagerie_graphql_operations_total', { operation: 'Predict' })).toBe(1);
    expect(
      sample(text, 'menagerie_http_requests_total', { route: '/graphql', method: 'POST' }),
    ).toBeGreaterThanOrEqual(3);
    expect(
      sample(text, 'menagerie_http_request_duration_seconds_count', {
        route: '/images/:id/thumb',
      }),
    ).toBe(2);
    expect(sample(text, 'menagerie_predictions_total', { model: 'faces', version: '1' })).toBe(1);
    expect(sample(text, 'menagerie_thumbnail_cache_requests_total', { result: 'miss' })).toBe(1);
    expect(sample(text, 'menagerie_thumbnail_cache_requests_total', { result: 'hit' })).toBe(1);
    expect(sample(text, 'menagerie_tf_tensors')).toBeGreaterThan(0);
    expect(sample(text, 'process_resident_memory_bytes')).toBeGreaterThan(0);
    expect(sample(text, 'menagerie_jobs_running')).toBe(0);
    expect(sample(text, 'menagerie_anonymous_predicts_in_flight')).toBe(0);
  });

  it('through a proxy (X-Forwarded-For) it needs a read token, like any other caller', async () => {
    const proxied = { 'x-forwarded-for': '203.0.113.9' };
    const anonymous = await t.get('/metrics', proxied);
    expect(anonymous.status).toBe(401);
    expect(((await anonymous.json()) as { error: { code: string } }).error.code).toBe(
      'UNAUTHENTICATED',
    );
    const unknown = await t.get('/metrics', { ...proxied, authorization: 'Bearer nope-nope-nope' });
    expect(unknown.status).toBe(401);
    const read = await t.get('/metrics', { ...proxied, authorization: `Bearer ${TOKENS.read}` });
    expect(read.status).toBe(200);
    expect(await read.text()).toMatch(/^menagerie_http_requests_total/m);
  });

  const external = Object.values(os.networkInterfaces())
    .flat()
    .find((i) => i && i.family === 'IPv4' && !i.internal)?.address;

  it.runIf(external !== undefined)(
    'from another machine’s address it needs a read token',
    async () => {
      const open = await startTestServer({ computeEmbeddings: false, host: '0.0.0.0' });
      try {
        const port = new URL(open.server.url).port;
        const url = `http://${external}:${port}/metrics`;
        expect((await fetch(url)).status).toBe(401);
        const read = await fetch(url, { headers: { authorization: `Bearer ${TOKENS.read}` } });
        expect(read.status).toBe(200);
      } finally {
        await open.dispose();
      }
    },
  );
});
