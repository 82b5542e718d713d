import fs from 'node:fs';
import path from 'node:path';
import { buildSchema } from 'graphql';
import { createClient } from 'graphql-ws';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import type { MenagerieEvents } from '../../schema/context.js';
import { makeImage, REPO_ROOT } from '../helpers/fixtures.js';
import { startTestServer, TOKENS, type TestServer } from '../helpers/server.js';
import {
  codeOf,
  observedEventHub,
  startProbedServer,
  type EventHubProbe,
  type ProbedServer,
} from '../helpers/probed-server.js';
import { waitFor } from '../helpers/wait-for.js';
let probe: ProbedServer;
let t: TestServer;
beforeAll(async () => {
  probe = await startProbedServer();
  t = probe.t;
});
afterAll(() => t.dispose());
const upload: ProbedServer['upload'] = (bytes, options) => probe.upload(bytes, options);
const expectHealthy = () => probe.expectHealthy();

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
    publish: { topic: 'imageAdded', send: (hub) => hub.publish('imageAdded', probe.stored) },
    reaches: (first) => expect(first.data).toEqual({ imageAdded: { id: String(probe.stored.id) } }),
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
        [t, probe.events],
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
