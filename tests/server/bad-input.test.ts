import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makeImage } from '../helpers/fixtures.js';
import { ADD_IMAGE, startTestServer, TOKENS, type TestServer } from '../helpers/server.js';

let t: TestServer;
let jpeg: Buffer;

beforeAll(async () => {
  t = await startTestServer();
  jpeg = await makeImage(1, { size: 64 });
  await t.server.services.images.add(jpeg, { label: 'cat' });
});
afterAll(() => t.dispose());

const upload = (bytes: Uint8Array, options: { token?: string; preflight?: boolean } = {}) =>
  t.upload(ADD_IMAGE, { file: null, label: 'cat' }, [{ path: 'variables.file', file: { bytes } }], {
    token: TOKENS.write,
    ...options,
  });

/** After any bad request: the process answers, a query works, nothing was stored. */
async function expectHealthy() {
  expect((await t.get('/healthz')).status).toBe(200);
  const res = await t.gql<{ imageStats: { totalCount: number } }>('{ imageStats { totalCount } }');
  expect(res.data?.imageStats.totalCount).toBe(1);
}

const codeOf = (res: { errors?: { extensions?: { code?: string } }[] }) =>
  res.errors?.[0]?.extensions?.code;

describe('bad uploads get their documented code and the server stays healthy', () => {
  it('not an image → IMAGE_UNREADABLE', async () => {
    const res = await upload(Buffer.from('%PDF-1.7 definitely not pixels'.repeat(20)));
    expect(codeOf(res)).toBe('IMAGE_UNREADABLE');
    await expectHealthy();
  });

  it('a truncated JPEG → IMAGE_UNREADABLE', async () => {
    const whole = await makeImage(2, { size: 128 });
    const res = await upload(whole.subarray(0, Math.floor(whole.length / 2)));
    expect(codeOf(res)).toBe('IMAGE_UNREADABLE');
    await expectHealthy();
  });

  it('0 bytes → IMAGE_EMPTY', async () => {
    expect(codeOf(await upload(Buffer.alloc(0)))).toBe('IMAGE_EMPTY');
    await expectHealthy();
  });

  it('over the 10 MB cap → UPLOAD_TOO_LARGE', async () => {
    const big = Buffer.alloc(10 * 1024 * 1024 + 1024, 0xab);
    jpeg.copy(big);
    const res = await upload(big);
    expect(codeOf(res)).toBe('UPLOAD_TOO_LARGE');
    await expectHealthy();
  });

  it('a 20000×20000 PNG (a decompression bomb of ~400 KB) → IMAGE_TOO_LARGE', async () => {
    const bomb = await sharp({
      create: { width: 20000, height: 20000, channels: 3, background: '#000' },
      limitInputPixels: false,
    })
      .extractChannel(0)
      .png({ compressionLevel: 6, adaptiveFiltering: false })
      .toBuffer();
    expect(bomb.length).toBeLessThan(2 * 1024 * 1024);
    const started = Date.now();
    const res = await upload(bomb);
    expect(codeOf(res)).toBe('IMAGE_TOO_LARGE');
    // Refused from the header: the 1.2 GB of pixels are never decoded.
    expect(Date.now() - started).toBeLessThan(5000);
    await expectHealthy();
  });

  it('a file part under another name than `map` gives → UPLOAD_INVALID', async () => {
    const res = await t.upload(
      ADD_IMAGE,
      { file: null, label: 'cat' },
      [{ path: 'variables.file', file: { bytes: jpeg, field: 'image' } }],
      { token: TOKENS.write, map: { '0': ['variables.file'] } },
    );
    expect(codeOf(res)).toBe('UPLOAD_INVALID');
    await expectHealthy();
  });

  it('more files than allowed → UPLOAD_TOO_MANY_FILES', async () => {
    const files = Array.from({ length: 11 }, (_, i) => ({
      path: `variables.files.${i}`,
      file: { bytes: jpeg },
    }));
    const res = await t.upload(
      'mutation($files: [Upload!]!) { __typename }',
      { files: [] },
      files,
      {
        token: TOKENS.write,
      },
    );
    expect(res.status).toBe(413);
    expect(codeOf(res)).toBe('UPLOAD_TOO_MANY_FILES');
    await expectHealthy();
  });

  it('an upload without the CSRF preflight header → CSRF_PREFLIGHT_REQUIRED, nothing read', async () => {
    const res = await upload(await makeImage(3), { preflight: false });
    expect(res.status).toBe(400);
    expect(codeOf(res)).toBe('CSRF_PREFLIGHT_REQUIRED');
    await expectHealthy();
  });
});

describe('auth on mutations', () => {
  const RELABEL = 'mutation { relabel(id: "1", label: "dog") { id } }';

  it('no token → UNAUTHENTICATED; an unknown token → UNAUTHENTICATED with 401', async () => {
    expect(codeOf(await upload(await makeImage(4), { token: '' }))).toBe('UNAUTHENTICATED');
    expect(codeOf(await t.gql(RELABEL))).toBe('UNAUTHENTICATED');
    const wrong = await t.gql(RELABEL, {}, { token: 'not-a-real-token-at-all' });
    expect(wrong.status).toBe(401);
    expect(codeOf(wrong)).toBe('UNAUTHENTICATED');
    const malformed = await t.gql(
      RELABEL,
      {},
      { headers: { authorization: 'Basic Zm9vOmJhcg==' } },
    );
    expect(codeOf(malformed)).toBe('UNAUTHENTICATED');
    await expectHealthy();
  });

  it('a read token → FORBIDDEN; queries need no token', async () => {
    expect(codeOf(await t.gql(RELABEL, {}, { token: TOKENS.read }))).toBe('FORBIDDEN');
    const read = await t.gql('{ labels { name } }', {}, { token: TOKENS.read });
    expect(read.errors).toBeUndefined();
    await expectHealthy();
  });

  it('a read-only server refuses even an admin token', async () => {
    const readOnly = await startTestServer({ readOnly: true });
    try {
      const res = await readOnly.gql(RELABEL, {}, { token: TOKENS.admin });
      expect(codeOf(res)).toBe('FORBIDDEN');
      expect(res.errors?.[0]?.message).toMatch(/read-only/);
    } finally {
      await readOnly.dispose();
    }
  });
});

describe('query limits and malformed requests', () => {
  it('a depth bomb → QUERY_TOO_DEEP', async () => {
    let selection = 'id';
    for (let i = 0; i < 15; i++)
      selection = `label { images(first: 1) { edges { node { ${selection} } } } }`;
    const res = await t.gql(`{ images(first: 1) { edges { node { ${selection} } } } }`);
    expect(res.status).toBe(400);
    expect(codeOf(res)).toBe('QUERY_TOO_DEEP');
    await expectHealthy();
  });

  it('a huge cost (pages of pages, or aliased fan-out) → QUERY_TOO_COMPLEX', async () => {
    const nested = await t.gql(
      `query($n: Int!) { images(first: $n) { edges { node { label { images(first: $n) { edges { node { id sha256 } } } } } } } }`,
      { n: 1000 },
    );
    expect(codeOf(nested)).toBe('QUERY_TOO_COMPLEX');
    const aliases = Array.from(
      { length: 200 },
      (_, i) => `a${i}: images(first: 1000) { edges { node { id } } }`,
    );
    const fanOut = await t.gql(`{ ${aliases.join(' ')} }`);
    expect(codeOf(fanOut)).toBe('QUERY_TOO_COMPLEX');
    await expectHealthy();
  });

  it('malformed JSON → BAD_REQUEST with 400', async () => {
    const res = await fetch(t.server.url, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: '{"query": "{ labels { name } }",',
    });
    expect(res.status).toBe(400);
    const body = (await res.json()) as { errors: { extensions: { code: string } }[] };
    expect(body.errors[0]!.extensions.code).toBe('BAD_REQUEST');
    await expectHealthy();
  });

  it('syntax errors, unknown fields, bad variables and bad ids have their codes', async () => {
    expect(codeOf(await t.gql('{ labels { name }'))).toBe('QUERY_PARSE_FAILED');
    expect(codeOf(await t.gql('{ labels { password } }'))).toBe('QUERY_INVALID');
    expect(
      codeOf(await t.gql('query($n: Int!) { images(first: $n) { totalCount } }', { n: 'many' })),
    ).toBe('BAD_USER_INPUT');
    expect(codeOf(await t.gql('{ image(id: "1e99") { id } }'))).toBe('BAD_USER_INPUT');
    expect(codeOf(await t.gql('{ image(id: "-1") { id } }'))).toBe('BAD_USER_INPUT');
    await expectHealthy();
  });
});

describe('unexpected errors', () => {
  it('are INTERNAL_SERVER_ERROR with a request id, no stack and no internal message', async () => {
    const broken = await startTestServer(
      {},
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
    try {
      const res = await broken.gql('{ imageStats { totalCount } }');
      const error = res.errors![0]!;
      expect(error.extensions?.code).toBe('INTERNAL_SERVER_ERROR');
      expect(error.extensions?.requestId).toBe(res.headers.get('x-request-id'));
      expect(JSON.stringify(res)).not.toMatch(/secret|stack|exploded/);
      // The log line for that request has the real message.
      await new Promise((r) => setTimeout(r, 20));
      const line = broken.logs.find((l) => l['requestId'] === error.extensions?.requestId);
      expect(line).toMatchObject({ level: 'error', errors: ['INTERNAL_SERVER_ERROR'] });
      expect(JSON.stringify(line)).toMatch(/exploded/);
    } finally {
      await broken.dispose();
    }
  });
});
