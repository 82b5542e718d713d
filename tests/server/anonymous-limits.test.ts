import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makeImage } from '../helpers/fixtures.js';
import { multipartBody, multipartHead, operationParts, rawRequest } from '../helpers/raw-http.js';
import { startTestServer, TOKENS, type TestServer } from '../helpers/server.js';
import { waitFor } from '../helpers/wait-for.js';
import { PREDICT, registerTinyModel, type PredictData } from '../helpers/serving.js';

const codeOf = (res: { errors?: { extensions?: { code?: string } }[] }) =>
  res.errors?.[0]?.extensions?.code;

async function servingServer(config: Parameters<typeof startTestServer>[0]) {
  const t = await startTestServer({ computeEmbeddings: false, ...config });
  const version = await registerTinyModel(t, 'faces', { labels: ['cat', 'dog', 'wild'] });
  await t.server.services.registry.promoteChampion('faces', version.version);
  await t.server.services.serving.championMoved('faces');
  return t;
}

let jpeg: Buffer;
beforeAll(async () => {
  jpeg = await makeImage(1);
});

const predict = (t: TestServer, token?: string) =>
  t.upload<PredictData>(
    PREDICT,
    { file: null },
    [{ path: 'variables.file', file: { bytes: jpeg } }],
    {
      token,
    },
  );

describe('anonymous predictions per client address', () => {
  let t: TestServer;
  beforeAll(async () => {
    t = await servingServer({ anonymousLimits: { predicts: 2, windowSeconds: 3600 } });
  });
  afterAll(() => t.dispose());

  it('are refused RATE_LIMITED (429, Retry-After) past the rate; a token is not limited', async () => {
    expect((await predict(t)).errors).toBeUndefined();
    expect((await predict(t)).errors).toBeUndefined();
    const refused = await predict(t);
    expect(refused.status).toBe(429);
    expect(codeOf(refused)).toBe('RATE_LIMITED');
    expect(Number(refused.headers.get('retry-after'))).toBeGreaterThan(0);
    expect((await predict(t, TOKENS.read)).errors).toBeUndefined();
    const rows = await t.workspace.database.db.selectFrom('predictions').selectAll().execute();
    expect(rows).toHaveLength(3);
  });
});

describe('anonymous predictions at once per client address', () => {
  let t: TestServer;
  beforeAll(async () => {
    t = await servingServer({ anonymousLimits: { predictsAtOnce: 1 } });
  });
  afterAll(() => t.dispose());

  it('are refused RATE_LIMITED past the limit, and admitted again once one finishes', async () => {
    // One upload held open: its body is sent but for the last bytes.
    const body = multipartBody([
      ...operationParts(PREDICT, { file: null }),
      {
        headers: ['Content-Disposition: form-data; name="0"; filename="a.jpg"'],
        value: jpeg,
      },
    ]);
    const held = rawRequest(t.origin, multipartHead(body.length), body.subarray(0, -20));
    await waitFor(
      async () =>
        /^menagerie_anonymous_predicts_in_flight 1$/m.test(await (await t.get('/metrics')).text()),
      'the held upload counted in flight',
      5000,
    );
    const second = await predict(t);
    expect(second.status).toBe(429);
    expect(codeOf(second)).toBe('RATE_LIMITED');
    expect(second.errors?.[0]?.message).toMatch(/at once/);
    held.write(body.subarray(-20));
    const first = await held.response;
    expect(first.status).toBe(200);
    expect(first.json?.errors, first.body).toBeUndefined();
    const third = await predict(t);
    expect(third.errors).toBeUndefined();
  });
});

describe('requests of any kind without a token, at once per client address', () => {
  let t: TestServer;
  beforeAll(async () => {
    t = await startTestServer({ computeEmbeddings: false, anonymousLimits: { requestsAtOnce: 1 } });
  });
  afterAll(() => t.dispose());

  it('are refused RATE_LIMITED before their body is read; a token is not limited', async () => {
    const query = JSON.stringify({ query: '{ labels { name } }' });
    // One query held open: its body is sent but for the last byte.
    const held = rawRequest(
      t.origin,
      'POST /graphql HTTP/1.1\r\nhost: 127.0.0.1\r\ncontent-type: application/json\r\n' +
        `content-length: ${query.length}\r\n\r\n${query.slice(0, -1)}`,
    );
    await waitFor(
      async () =>
        /^menagerie_anonymous_requests_in_flight 1$/m.test(await (await t.get('/metrics')).text()),
      'the held query counted in flight',
      5000,
    );
    const second = await t.gql('{ labels { name } }');
    expect(second.status).toBe(429);
    expect(codeOf(second)).toBe('RATE_LIMITED');
    expect((await t.gql('{ labels { name } }', {}, { token: TOKENS.read })).errors).toBeUndefined();
    held.write(query.slice(-1));
    expect((await held.response).status).toBe(200);
    expect((await t.gql('{ labels { name } }')).errors).toBeUndefined();
  });
});
