import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makeImage } from '../helpers/fixtures.js';
import {
  multipartBody,
  multipartHead,
  operationParts,
  rawRequest,
  type RawPart,
} from '../helpers/raw-http.js';
import { startTestServer, TOKENS, type TestServer } from '../helpers/server.js';
import { PREDICT } from '../helpers/serving.js';

const MB = 1024 * 1024;

let t: TestServer;
let jpeg: Buffer;

beforeAll(async () => {
  t = await startTestServer({ computeEmbeddings: false });
  jpeg = await makeImage(1, { size: 64 });
});
afterAll(() => t.dispose());

/** After a bad request: the process answers, and no prediction or image was stored. */
async function expectNothingStored() {
  expect((await t.get('/healthz')).status).toBe(200);
  const db = t.workspace.database.db;
  expect(await db.selectFrom('predictions').selectAll().execute()).toHaveLength(0);
  expect(await db.selectFrom('images').selectAll().execute()).toHaveLength(0);
}

const fileHeaders = (filename: string, ...extra: string[]) => [
  `Content-Disposition: form-data; name="0"; filename="${filename}"`,
  'Content-Type: image/jpeg',
  ...extra,
];

/** A predict request whose multipart body is `parts` exactly as given. */
function sendMultipart(parts: RawPart[]) {
  const body = multipartBody(parts);
  return rawRequest(t.origin, multipartHead(body.length), body).response;
}

describe('a malformed multipart part header is UPLOAD_INVALID (400), never an internal error', () => {
  const ops = () => operationParts(PREDICT, { file: null });
  it.each([
    {
      name: 'a NUL byte in the filename',
      parts: () => [...ops(), { headers: fileHeaders('a\u0000b.jpg'), value: jpeg }],
    },
    {
      name: 'a control byte (ESC) in the filename',
      parts: () => [...ops(), { headers: fileHeaders('a\u001bb.jpg'), value: jpeg }],
    },
    {
      name: 'a header line without a colon in the file part',
      parts: () => [...ops(), { headers: fileHeaders('a.jpg', 'no colon here'), value: jpeg }],
    },
    {
      name: 'a header line without a colon in `operations`',
      parts: () => {
        const [operations, map] = ops();
        return [
          { ...operations!, headers: [...operations!.headers, 'no colon here'] },
          map!,
          { headers: fileHeaders('a.jpg'), value: jpeg },
        ];
      },
    },
    {
      name: 'a 100 KB header in the file part',
      parts: () => [
        ...ops(),
        { headers: fileHeaders('a.jpg', `X-Padding: ${'a'.repeat(100_000)}`), value: jpeg },
      ],
    },
  ])('$name', async ({ parts }) => {
    const res = await sendMultipart(parts());
    expect(res.json?.errors?.[0]?.extensions?.code, res.body).toBe('UPLOAD_INVALID');
    expect(res.status).toBe(400);
    await expectNothingStored();
  });
});

describe('requests the server would otherwise wait on forever', () => {
  it('a multipart request without a boundary is answered UPLOAD_INVALID (400)', async () => {
    const body = multipartBody(operationParts(PREDICT, { file: null }));
    const req = rawRequest(
      t.origin,
      multipartHead(body.length, { contentType: 'multipart/form-data' }),
      body,
    );
    const res = await req.response;
    expect(res.status).toBe(400);
    expect(res.json?.errors?.[0]?.extensions?.code).toBe('UPLOAD_INVALID');
    expect(res.json?.errors?.[0]?.message).toMatch(/boundary/);
    await expectNothingStored();
  });

  it('a Content-Length over what any upload may be is refused 413 before the body is read', async () => {
    // Headers only: the 200 MB announced never follow, so only an up-front refusal answers.
    const req = rawRequest(t.origin, multipartHead(200 * MB));
    const res = await req.response;
    expect(res.status).toBe(413);
    expect(res.json?.errors?.[0]?.extensions?.code).toBe('UPLOAD_TOO_LARGE');
    await req.closed;
    await expectNothingStored();
  });

  it('a file over the cap is refused when the cap is reached, not after the whole body', async () => {
    const small = await startTestServer({ computeEmbeddings: false, maxFileSize: MB });
    try {
      const parts = operationParts(PREDICT, { file: null });
      const head = multipartBody(parts).subarray(0, -`--menagerie-test-boundary--\r\n`.length);
      const fileStart = Buffer.from(
        `--menagerie-test-boundary\r\n${fileHeaders('big.jpg').join('\r\n')}\r\n\r\n`,
      );
      // 1.5 MB of a file the request says is 5 MB long; the rest is never sent.
      const sent = Buffer.concat([head, fileStart, jpeg, Buffer.alloc(1.5 * MB - jpeg.length)]);
      const req = rawRequest(small.origin, multipartHead(sent.length + 3.5 * MB), sent);
      const res = await req.response;
      expect(res.status).toBe(413);
      expect(res.json?.errors?.[0]?.extensions?.code).toBe('UPLOAD_TOO_LARGE');
      await req.closed;
      expect((await small.get('/healthz')).status).toBe(200);
    } finally {
      await small.dispose();
    }
  });

  it('headers never finished, and a body never finished, are cut off by the server', async () => {
    const slow = await startTestServer({
      computeEmbeddings: false,
      httpTimeouts: { headersMs: 300, requestMs: 600 },
    });
    try {
      const headers = rawRequest(slow.origin, 'POST /graphql HTTP/1.1\r\nHost: x\r\n');
      const body = rawRequest(
        slow.origin,
        'POST /graphql HTTP/1.1\r\nHost: x\r\ncontent-type: application/json\r\n' +
          'content-length: 1000\r\n\r\n{"query":',
      );
      // Node answers 408 when it can, then closes; either way the socket is freed.
      await Promise.all([headers.closed, body.closed]);
      for (const res of [await headers.response, await body.response])
        expect([0, 408]).toContain(res.status);
      expect((await slow.get('/healthz')).status).toBe(200);
    } finally {
      await slow.dispose();
    }
  });
});

describe('a file sent into an argument that is not an Upload', () => {
  it('is BAD_USER_INPUT, its message free of the upload object', async () => {
    const res = await t.upload(
      'mutation($id: ID!, $label: String!) { relabel(id: $id, label: $label) { id } }',
      { id: '1', label: null },
      [{ path: 'variables.label', file: { bytes: jpeg } }],
      { token: TOKENS.write },
    );
    const error = res.errors?.[0];
    expect(error?.extensions?.code).toBe('BAD_USER_INPUT');
    expect(error?.message).toMatch(/\$label/);
    expect(error?.message).not.toMatch(/resolve|reject|promise|capacitor|function|\{/);
    await expectNothingStored();
  });
});
