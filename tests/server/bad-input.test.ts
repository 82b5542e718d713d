import fs from 'node:fs';
import path from 'node:path';
import { buildSchema } from 'graphql';
import { createClient } from 'graphql-ws';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { createEventHub } from '../../core/event-hub.js';
import type { CatalogImage } from '../../data/image-catalog.js';
import type { MenagerieEvents } from '../../schema/context.js';
import { makeImage, REPO_ROOT } from '../helpers/fixtures.js';
import {
  ADD_IMAGE,
  startTestServer,
  TOKENS,
  type GraphQLResponse,
  type TestServer,
  type UploadFile,
} from '../helpers/server.js';
import { PREDICT, registerTinyModel } from '../helpers/serving.js';
import { waitFor } from '../helpers/wait-for.js';

type EventHubProbe = ReturnType<typeof observedEventHub>;

/** An event hub that counts subscribers per topic, so a test publishes once one listens. */
function observedEventHub() {
  const hub = createEventHub<MenagerieEvents>();
  const subscribers: Partial<Record<keyof MenagerieEvents, number>> = {};
  return {
    hub: {
      publish: hub.publish,
      subscribe<K extends keyof MenagerieEvents & string>(topic: K) {
        const events = hub.subscribe(topic);
        subscribers[topic] = (subscribers[topic] ?? 0) + 1;
        return events;
      },
    },
    subscribers: (topic: keyof MenagerieEvents) => subscribers[topic] ?? 0,
  };
}

let t: TestServer;
let tEvents: EventHubProbe;
let jpeg: Buffer;
let stored: CatalogImage;

beforeAll(async () => {
  tEvents = observedEventHub();
  t = await startTestServer({ computeEmbeddings: false }, { services: { events: tEvents.hub } });
  jpeg = await makeImage(1, { size: 64 });
  stored = (await t.server.services.images.add(jpeg, { label: 'cat' })).image;
  // A champion, so predict's bad uploads meet the same checks as addImage's, decode included.
  await registerTinyModel(t, 'faces', { labels: ['cat', 'dog', 'wild'] });
  const promote = 'mutation { promoteChampion(name: "faces", version: 1) { version } }';
  const promoted = await t.gql(promote, {}, { token: TOKENS.write });
  expect(promoted.errors).toBeUndefined();
});
afterAll(() => t.dispose());

const upload = (bytes: Uint8Array, options: { token?: string; preflight?: boolean } = {}) =>
  t.upload(ADD_IMAGE, { file: null, label: 'cat' }, [{ path: 'variables.file', file: { bytes } }], {
    token: TOKENS.write,
    ...options,
  });

/** After any bad request: the process answers and is ready, a query works, nothing was stored. */
async function expectHealthy() {
  expect((await t.get('/healthz')).status).toBe(200);
  expect((await t.get('/readyz')).status).toBe(200);
  const res = await t.gql<{ imageStats: { totalCount: number }; labels: { name: string }[] }>(
    '{ imageStats { totalCount } labels { name } }',
  );
  expect(res.errors).toBeUndefined();
  expect(res.data?.imageStats.totalCount).toBe(1);
  const predictions = await t.workspace.database.db.selectFrom('predictions').selectAll().execute();
  expect(predictions).toHaveLength(0);
}

const codeOf = (res: { errors?: { extensions?: { code?: string } }[] }) =>
  res.errors?.[0]?.extensions?.code;

const MB = 1024 * 1024;

/** Bad files, made once: the bomb takes a while to compress. */
const bad = {} as { truncated: Buffer; tooBig: Buffer; bomb: Buffer };
beforeAll(async () => {
  const whole = await makeImage(2, { size: 128 });
  bad.truncated = whole.subarray(0, Math.floor(whole.length / 2));
  bad.tooBig = Buffer.alloc(10 * MB + 1024, 0xab);
  jpeg.copy(bad.tooBig);
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
    file: () => ({ bytes: Buffer.from('%PDF-1.7 not pixels'.repeat(30)), type: 'image/jpeg' }),
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
    file: () => ({ bytes: jpeg, field: 'image' }),
    code: 'UPLOAD_INVALID',
  },
  {
    name: 'an upload without the CSRF preflight header → CSRF_PREFLIGHT_REQUIRED, nothing read',
    file: () => ({ bytes: jpeg }),
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

/** Who may call an operation: anyone, or a token of at least this role. */
type Rule = 'public' | 'read' | 'write' | 'admin';
const RANK: Record<Rule, number> = { public: 0, read: 1, write: 2, admin: 3 };
const CALLERS = [
  { caller: 'no token', token: undefined, rank: 0 },
  { caller: 'a read token', token: TOKENS.read, rank: 1 },
  { caller: 'a write token', token: TOKENS.write, rank: 2 },
  { caller: 'an admin token', token: TOKENS.admin, rank: 3 },
];

/**
 * Every mutation's rule, with a call that passes it and then fails on the mutation's own
 * terms (`reaches`), so nothing changes whoever calls. A mutation the SDL gains needs a row
 * here, and so a rule someone chose.
 */
const MUTATION_RULES: Record<
  string,
  {
    rule: Rule;
    query: string;
    variables?: Record<string, unknown>;
    /** Where an (empty) upload goes in `variables`. */
    upload?: string;
    reaches: string;
  }
> = {
  addImage: {
    rule: 'write',
    query: 'mutation($file: Upload!) { addImage(file: $file, label: "cat") { duplicate } }',
    variables: { file: null },
    upload: 'variables.file',
    reaches: 'IMAGE_EMPTY',
  },
  cancelRun: {
    rule: 'write',
    query: 'mutation { cancelRun(id: "0123456789abcdef0123456789abcdef") { id } }',
    reaches: 'RUN_NOT_FOUND',
  },
  deleteAlias: {
    rule: 'write',
    query: 'mutation { deleteAlias(name: "no-such-model", alias: "challenger") }',
    reaches: 'MODEL_NOT_FOUND',
  },
  deleteImage: {
    rule: 'write',
    query: 'mutation { deleteImage(id: "999999") }',
    reaches: 'IMAGE_NOT_FOUND',
  },
  evaluateModel: {
    rule: 'write',
    query:
      'mutation { evaluateModel(input: { model: "models:/no-such-model@champion", split: VAL }) { id } }',
    reaches: 'MODEL_NOT_FOUND',
  },
  ingest: {
    rule: 'admin',
    query: 'mutation { ingest(path: "/no/such/folder") }',
    reaches: 'INGEST_PATH_FORBIDDEN',
  },
  predict: {
    rule: 'public',
    query: 'mutation($file: Upload!) { predict(file: $file) { id } }',
    variables: { file: null },
    upload: 'variables.file',
    reaches: 'IMAGE_EMPTY',
  },
  predictBatch: {
    rule: 'public',
    query: 'mutation($files: [Upload!]!) { predictBatch(files: $files) { id } }',
    variables: { files: [null] },
    upload: 'variables.files.0',
    reaches: 'IMAGE_EMPTY',
  },
  promoteChampion: {
    rule: 'write',
    query: 'mutation { promoteChampion(name: "no-such-model", version: 1) { version } }',
    reaches: 'MODEL_NOT_FOUND',
  },
  registerModel: {
    rule: 'write',
    query:
      'mutation { registerModel(name: "pets", runId: "0123456789abcdef0123456789abcdef") { version } }',
    reaches: 'RUN_NOT_FOUND',
  },
  relabel: {
    rule: 'write',
    query: 'mutation { relabel(id: "999999", label: "dog") { id } }',
    reaches: 'IMAGE_NOT_FOUND',
  },
  setAlias: {
    rule: 'write',
    query:
      'mutation { setAlias(name: "no-such-model", alias: "challenger", version: 1) { version } }',
    reaches: 'MODEL_NOT_FOUND',
  },
  startTraining: {
    rule: 'write',
    query: 'mutation { startTraining(input: { plugin: "no-such-plugin" }) { id } }',
    reaches: 'PLUGIN_NOT_FOUND',
  },
  startTuning: {
    rule: 'write',
    query:
      'mutation { startTuning(input: { plugin: "no-such-plugin", tuner: "no-such-tuner" }) { id } }',
    reaches: 'PLUGIN_NOT_FOUND',
  },
  submitFeedback: {
    rule: 'write',
    query: 'mutation { submitFeedback(predictionId: "999999", correctLabel: "cat") { id } }',
    reaches: 'PREDICTION_NOT_FOUND',
  },
  transitionStage: {
    rule: 'write',
    query:
      'mutation { transitionStage(name: "no-such-model", version: 1, stage: STAGING) { version } }',
    reaches: 'MODEL_NOT_FOUND',
  },
};

const SDL = buildSchema(fs.readFileSync(path.join(REPO_ROOT, 'schema/schema.graphql'), 'utf8'));
const SDL_MUTATIONS = Object.keys(SDL.getMutationType()?.getFields() ?? {}).sort();
const SDL_SUBSCRIPTIONS = Object.keys(SDL.getSubscriptionType()?.getFields() ?? {}).sort();

function callMutation(server: TestServer, name: string, token: string | undefined) {
  const row = MUTATION_RULES[name]!;
  return row.upload
    ? server.upload(
        row.query,
        row.variables ?? {},
        [{ path: row.upload, file: { bytes: new Uint8Array(0) } }],
        { token },
      )
    : server.gql(row.query, row.variables, { token });
}

/**
 * Every subscription's rule. A graphql-ws connection authenticates once (an unknown token is
 * closed with 4401); none has a role rule yet. `publish` makes the first event once the
 * server listens; without it the first result comes from the subscription itself.
 */
const SUBSCRIPTION_RULES: Record<
  string,
  {
    rule: Rule;
    query: string;
    publish?: { topic: keyof MenagerieEvents; send: (hub: EventHubProbe['hub']) => void };
    reaches: (first: SubscriptionResult) => void;
  }
> = {
  evaluationProgress: {
    rule: 'public',
    query: 'subscription { evaluationProgress(id: "0123456789abcdef0123456789abcdef") { status } }',
    reaches: (first) => expect(first.errors?.[0]?.message).toMatch(/^no evaluation has id '0123/),
  },
  imageAdded: {
    rule: 'public',
    query: 'subscription { imageAdded { id } }',
    publish: { topic: 'imageAdded', send: (hub) => hub.publish('imageAdded', stored) },
    reaches: (first) => expect(first.data).toEqual({ imageAdded: { id: String(stored.id) } }),
  },
  runProgress: {
    rule: 'public',
    query: 'subscription { runProgress(runId: "0123456789abcdef0123456789abcdef") { status } }',
    reaches: (first) => expect(first.errors?.[0]?.extensions?.code).toBe('RUN_NOT_FOUND'),
  },
};

interface SubscriptionResult {
  data?: Record<string, unknown> | null;
  errors?: readonly { message: string; extensions?: { code?: string } }[];
}

/** The first result of a subscription over graphql-ws, or the errors it was refused with. */
async function firstResult(
  server: TestServer,
  events: EventHubProbe,
  name: string,
  token: string | undefined,
  allowed: boolean,
): Promise<SubscriptionResult> {
  const row = SUBSCRIPTION_RULES[name]!;
  const client = createClient({
    url: server.server.url.replace(/^http/, 'ws'),
    webSocketImpl: WebSocket,
    retryAttempts: 0,
    connectionParams: token ? { authorization: `Bearer ${token}` } : {},
  });
  try {
    const listening = row.publish ? events.subscribers(row.publish.topic) : 0;
    const results = client.iterate<Record<string, unknown>>({ query: row.query });
    const first = results.next();
    if (row.publish && allowed) {
      const { topic, send } = row.publish;
      await waitFor(() => events.subscribers(topic) > listening, `a subscriber to ${topic}`);
      send(events.hub);
    }
    try {
      return (await first).value as SubscriptionResult;
    } catch (error) {
      return { errors: error as SubscriptionResult['errors'] };
    } finally {
      await results.return?.();
    }
  } finally {
    await client.dispose();
  }
}

describe('the access rule of every operation in schema/schema.graphql', () => {
  let readOnly: TestServer;
  let readOnlyEvents: EventHubProbe;
  beforeAll(async () => {
    readOnlyEvents = observedEventHub();
    readOnly = await startTestServer(
      { readOnly: true, computeEmbeddings: false },
      { services: { events: readOnlyEvents.hub } },
    );
  });
  afterAll(() => readOnly.dispose());

  it('the table has a row for each mutation, and the server serves exactly these', () => {
    expect(Object.keys(MUTATION_RULES).sort()).toEqual(SDL_MUTATIONS);
    expect(Object.keys(t.server.schema.getMutationType()!.getFields()).sort()).toEqual(
      SDL_MUTATIONS,
    );
  });

  it.each(SDL_MUTATIONS)(
    '%s: refused below its role, reaches its resolver from it',
    async (name) => {
      const row = MUTATION_RULES[name];
      expect(row, `${name} has no row in MUTATION_RULES: decide who may call it`).toBeDefined();
      for (const { caller, token, rank } of CALLERS) {
        const code = codeOf(await callMutation(t, name, token));
        const expected =
          rank >= RANK[row!.rule]
            ? row!.reaches
            : token === undefined
              ? 'UNAUTHENTICATED'
              : 'FORBIDDEN';
        expect(code, `${name} with ${caller}`).toBe(expected);
      }
      expect(['UNAUTHENTICATED', 'FORBIDDEN']).not.toContain(row!.reaches);
    },
  );

  it.each(SDL_MUTATIONS)('%s on a read-only server: refused unless public', async (name) => {
    const row = MUTATION_RULES[name];
    expect(row, `${name} has no row in MUTATION_RULES`).toBeDefined();
    for (const { caller, token } of CALLERS) {
      const res = await callMutation(readOnly, name, token);
      if (row!.rule === 'public') {
        expect(codeOf(res), `${name} with ${caller}`).toBe(row!.reaches);
      } else if (token === undefined) {
        expect(['UNAUTHENTICATED', 'FORBIDDEN'], `${name} with ${caller}`).toContain(codeOf(res));
      } else {
        expect(codeOf(res), `${name} with ${caller}`).toBe('FORBIDDEN');
        expect(res.errors?.[0]?.message, `${name} with ${caller}`).toMatch(/read-only/);
      }
    }
  });

  it('the table has a row for each subscription, and the server serves exactly these', () => {
    expect(Object.keys(SUBSCRIPTION_RULES).sort()).toEqual(SDL_SUBSCRIPTIONS);
    expect(Object.keys(t.server.schema.getSubscriptionType()!.getFields()).sort()).toEqual(
      SDL_SUBSCRIPTIONS,
    );
  });

  it.each(SDL_SUBSCRIPTIONS)(
    'subscription %s: refused below its role, read-only or not; reached from it',
    async (name) => {
      const row = SUBSCRIPTION_RULES[name];
      expect(
        row,
        `${name} has no row in SUBSCRIPTION_RULES: decide who may subscribe`,
      ).toBeDefined();
      for (const [server, events] of [
        [t, tEvents],
        [readOnly, readOnlyEvents],
      ] as const) {
        for (const { caller, token, rank } of CALLERS) {
          const allowed = rank >= RANK[row!.rule];
          const first = await firstResult(server, events, name, token, allowed);
          if (allowed) row!.reaches(first);
          else
            expect(first.errors?.[0]?.extensions?.code, `${name} with ${caller}`).toBe(
              token === undefined ? 'UNAUTHENTICATED' : 'FORBIDDEN',
            );
        }
      }
    },
  );

  it('a subscription connection with a token the server does not know is closed 4401', async () => {
    const client = createClient({
      url: t.server.url.replace(/^http/, 'ws'),
      webSocketImpl: WebSocket,
      retryAttempts: 0,
      connectionParams: { authorization: 'Bearer not-a-real-token-at-all' },
    });
    try {
      const results = client.iterate({ query: SUBSCRIPTION_RULES['imageAdded']!.query });
      const refusal = await results.next().then(
        () => undefined,
        (error: unknown) => error as { code?: number; reason?: string },
      );
      expect(refusal).toMatchObject({ code: 4401, reason: 'UNAUTHENTICATED' });
    } finally {
      await client.dispose();
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
