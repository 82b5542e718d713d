import { expect } from 'vitest';
import { createEventHub } from '../../core/event-hub.js';
import type { CatalogImage } from '../../data/image-catalog.js';
import type { MenagerieEvents } from '../../schema/context.js';
import { makeImage } from './fixtures.js';
import { ADD_IMAGE, startTestServer, TOKENS, type TestServer } from './server.js';
import { registerTinyModel } from './serving.js';

/**
 * The server the bad-input and access-rule tests attack: one catalogue image, a tiny
 * champion (so predict's bad uploads meet the same checks as addImage's, decode included),
 * and an event hub that counts subscribers per topic, so a test publishes once one listens.
 */
export interface ProbedServer {
  t: TestServer;
  events: EventHubProbe;
  /** The catalogue's one image (a 64×64 JPEG, label cat) and its bytes. */
  stored: CatalogImage;
  jpeg: Buffer;
  /** addImage of `bytes` as label cat, by multipart, with a write token unless told. */
  upload(
    bytes: Uint8Array,
    options?: { token?: string; preflight?: boolean },
  ): ReturnType<TestServer['upload']>;
  /** After any bad request: the process answers and is ready, a query works, nothing was stored. */
  expectHealthy(): Promise<void>;
}

export type EventHubProbe = ReturnType<typeof observedEventHub>;

/** An event hub that counts subscribers per topic, so a test publishes once one listens. */
export function observedEventHub() {
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

export async function startProbedServer(): Promise<ProbedServer> {
  const events = observedEventHub();
  const t = await startTestServer(
    { computeEmbeddings: false },
    { services: { events: events.hub } },
  );
  const jpeg = await makeImage(1, { size: 64 });
  const stored = (await t.server.services.images.add(jpeg, { label: 'cat' })).image;
  await registerTinyModel(t, 'faces', { labels: ['cat', 'dog', 'wild'] });
  const promote = 'mutation { promoteChampion(name: "faces", version: 1) { version } }';
  const promoted = await t.gql(promote, {}, { token: TOKENS.write });
  expect(promoted.errors).toBeUndefined();
  return {
    t,
    events,
    stored,
    jpeg,
    upload: (bytes, options = {}) =>
      t.upload(
        ADD_IMAGE,
        { file: null, label: 'cat' },
        [{ path: 'variables.file', file: { bytes } }],
        { token: TOKENS.write, ...options },
      ),
    async expectHealthy() {
      expect((await t.get('/healthz')).status).toBe(200);
      expect((await t.get('/readyz')).status).toBe(200);
      const res = await t.gql<{ imageStats: { totalCount: number }; labels: { name: string }[] }>(
        '{ imageStats { totalCount } labels { name } }',
      );
      expect(res.errors).toBeUndefined();
      expect(res.data?.imageStats.totalCount).toBe(1);
      const predictions = await t.workspace.database.db
        .selectFrom('predictions')
        .selectAll()
        .execute();
      expect(predictions).toHaveLength(0);
    },
  };
}

/** The first error's code. */
export const codeOf = (res: { errors?: { extensions?: { code?: string } }[] }) =>
  res.errors?.[0]?.extensions?.code;
