import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makeImage } from '../helpers/fixtures.js';
import {
  ADD_IMAGE,
  startTestServer,
  TOKENS,
  type GraphQLResponse,
  type TestServer,
  type UploadFile,
} from '../helpers/server.js';
import { codeOf, startProbedServer, type ProbedServer } from '../helpers/probed-server.js';
import { PREDICT } from '../helpers/serving.js';
import { waitFor } from '../helpers/wait-for.js';

let probe: ProbedServer;
let t: TestServer;
beforeAll(async () => {
  probe = await startProbedServer();
  t = probe.t;
});
afterAll(() => t.dispose());
const expectHealthy = () => probe.expectHealthy();

const MB = 1024 * 1024;

/** Bad files, made once: the bomb takes a while to compress. */
const bad = {} as { truncated: Buffer; tooBig: Buffer; bomb: Buffer };
beforeAll(async () => {
  const whole = await makeImage(2, { size: 128 });
  bad.truncated = whole.subarray(0, Math.floor(whole.length / 2));
  bad.tooBig = Buffer.alloc(10 * MB + 1024, 0xab);
  probe.jpeg.copy(bad.tooBig);
  bad.bomb = await sharp({
    create: { width: 20000, height: 20000, channels: 3, background: '#000' },
    limitInputPixels: false,
  })
    .extractChannel(0)
    .png({ compressionLevel: 6, adaptiveFiltering: false })
    .toBuffer();
});

/** One bad upload, and the code each upload mutation answers it with. */
interface BadUpload {
  name: string;
  file: () => UploadFile;
  code: string;
  status?: number;
  /** Send without the `apollo-require-preflight` header. */
  noPreflight?: true;
  then?: (res: GraphQLResponse) => void;
}

const BAD_UPLOADS: BadUpload[] = [
  {
    name: 'not an image → IMAGE_UNREADABLE (whatever the MIME type claims)',
    file: () => ({
      bytes: Buffer.from('%PDF-1.7 not pixels'.repeat(30)),
      type: 'image/probe.jpeg',
    }),
    code: 'IMAGE_UNREADABLE',
  },
  {
    name: 'a truncated JPEG → IMAGE_UNREADABLE',
    file: () => ({ bytes: bad.truncated }),
    code: 'IMAGE_UNREADABLE',
  },
  { name: '0 bytes → IMAGE_EMPTY', file: () => ({ bytes: Buffer.alloc(0) }), code: 'IMAGE_EMPTY' },
  {
    name: 'over the 10 MB cap → UPLOAD_TOO_LARGE',
    file: () => ({ bytes: bad.tooBig }),
    code: 'UPLOAD_TOO_LARGE',
  },
  {
    name: 'a 20000×20000 PNG (a decompression bomb of ~400 KB) → IMAGE_TOO_LARGE',
    file: () => ({ bytes: bad.bomb, filename: 'bomb.png', type: 'image/png' }),
    code: 'IMAGE_TOO_LARGE',
    then: (res) => {
      expect(bad.bomb.length).toBeLessThan(2 * MB);
      expect(res.errors?.[0]?.message).toMatch(/20000×20000/);
    },
  },
  {
    // Decoding would find the data cut short (IMAGE_UNREADABLE): the size is refused from the
    // header, before any pixel is decoded, so the 1.2 GB of pixels never are.
    name: 'the first 4 KB of that bomb → IMAGE_TOO_LARGE: refused from its header',
    file: () => ({ bytes: bad.bomb.subarray(0, 4096), filename: 'bomb.png', type: 'image/png' }),
    code: 'IMAGE_TOO_LARGE',
  },
  {
    name: 'a file part under another name than `map` gives → UPLOAD_INVALID',
    file: () => ({ bytes: probe.jpeg, field: 'image' }),
    code: 'UPLOAD_INVALID',
  },
  {
    name: 'an upload without the CSRF preflight header → CSRF_PREFLIGHT_REQUIRED, nothing read',
    file: () => ({ bytes: probe.jpeg }),
    noPreflight: true,
    code: 'CSRF_PREFLIGHT_REQUIRED',
    status: 400,
  },
];

/** A mutation that takes an upload, called as a client would, with the role it needs. */
interface UploadMutation {
  mutation: string;
  query: string;
  variables: Record<string, unknown>;
  /** Where the file goes in `variables`. */
  path: string;
  token?: string;
}

const UPLOAD_MUTATIONS: UploadMutation[] = [
  {
    mutation: 'addImage',
    query: ADD_IMAGE,
    variables: { file: null, label: 'cat' },
    path: 'variables.file',
    token: TOKENS.write,
  },
  { mutation: 'predict', query: PREDICT, variables: { file: null }, path: 'variables.file' },
  {
    mutation: 'predictBatch',
    query: 'mutation($files: [Upload!]!) { predictBatch(files: $files) { id } }',
    variables: { files: [null] },
    path: 'variables.files.0',
  },
];

describe.each(UPLOAD_MUTATIONS)(
  'bad uploads to $mutation get their documented code and the server stays healthy',
  (target) => {
    it.each(BAD_UPLOADS)('$name', async (c) => {
      const res = await t.upload(
        target.query,
        target.variables,
        [{ path: target.path, file: c.file() }],
        { token: target.token, ...(c.noPreflight && { preflight: false }) },
      );
      expect(codeOf(res)).toBe(c.code);
      if (c.status !== undefined) expect(res.status).toBe(c.status);
      c.then?.(res);
      await expectHealthy();
    });
  },
);

describe('bad multipart requests', () => {
  it('more files than allowed → UPLOAD_TOO_MANY_FILES', async () => {
    const files = Array.from({ length: 11 }, (_, i) => ({
      path: `variables.files.${i}`,
      file: { bytes: probe.jpeg },
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
      // The log line for that request has the real message (written once the response is).
      const line = await waitFor(
        () => broken.logs.find((l) => l['requestId'] === error.extensions?.requestId),
        'the log line of the failed request',
      );
      expect(line).toMatchObject({ level: 'error', errors: ['INTERNAL_SERVER_ERROR'] });
      expect(JSON.stringify(line)).toMatch(/exploded/);
    } finally {
      await broken.dispose();
    }
  });
});
