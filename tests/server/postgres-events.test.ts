import path from 'node:path';
import { createClient, type Client } from 'graphql-ws';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { openWorkspace, type Workspace } from '../../cli/workspace.js';
import { createServer, type MenagerieServer } from '../../server/create-server.js';
import pg from 'pg';
import { createPostgresEventHub } from '../../core/postgres-event-hub.js';
import {
  databaseBackend,
  DATABASE_BACKENDS,
  serviceEnv,
  SERVICE_START_TIMEOUT,
} from '../helpers/backends.js';
import { makeImage, tempDir } from '../helpers/fixtures.js';

const TOKEN = 'pg-events-admin-token';

// Two replicas on one PostgreSQL and no Redis: events go through LISTEN/NOTIFY, so an image
// added through A reaches a subscriber on B.
describe.runIf(DATABASE_BACKENDS.includes('postgres'))('events over PostgreSQL NOTIFY', () => {
  const { dir, remove } = tempDir('menagerie-pg-events-');
  const replicas: { server: MenagerieServer; workspace: Workspace }[] = [];
  let client: Client;
  beforeAll(async () => {
    const database = (await databaseBackend('postgres').location({ fresh: true }))!;
    for (const name of ['a', 'b']) {
      const workspace = await openWorkspace({ dataDir: path.join(dir, name), database });
      const server = await createServer({
        workspace,
        config: {
          port: 0,
          playground: false,
          logger: () => {},
          tokens: [{ role: 'admin', token: TOKEN }],
          similarBackbone: null,
          computeEmbeddings: false,
          queueUrl: null,
          events: 'postgres',
        },
      });
      replicas.push({ server, workspace });
    }
  }, SERVICE_START_TIMEOUT);
  afterAll(async () => {
    await client?.dispose();
    for (const r of replicas) await r.server.close();
    for (const r of replicas) await r.workspace.close();
    remove();
  });

  it('an image added through A reaches a subscriber on B', async () => {
    const [a, b] = replicas as [(typeof replicas)[0], (typeof replicas)[0]];
    client = createClient({
      url: b.server.url.replace(/^http/, 'ws'),
      webSocketImpl: WebSocket,
      lazy: false,
    });
    const added = client.iterate<{ imageAdded: { sha256: string } }>({
      query: 'subscription { imageAdded { sha256 } }',
    });
    // Images are added through A until B's subscriber has one: its subscription starts at
    // an instant the client cannot see, so the first add may come before it.
    const first = added.next();
    let delivered: Awaited<typeof first> | undefined;
    void first.then((value) => (delivered = value));
    const sent: string[] = [];
    for (let seed = 1; !delivered && seed <= 50; seed++) {
      sent.push(await addImage(a.server.url, seed));
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    expect(sent).toContain(delivered?.value?.data?.imageAdded.sha256);
    await added.return?.();
  }, 60_000);
});

describe.runIf(DATABASE_BACKENDS.includes('postgres'))('the PostgreSQL event hub', () => {
  it('listens again after PostgreSQL ends its connection, and says so', async () => {
    const url = (await serviceEnv('postgres')).MENAGERIE_DATABASE_URL!;
    const channel = `menagerie_test_${process.pid}`;
    const errors: string[] = [];
    const hub = createPostgresEventHub<{ tick: number }>({
      connectionString: url,
      channel,
      reconnectMs: 50,
      onError: (error) => errors.push(error.message),
    });
    const admin = new pg.Client({ connectionString: url });
    await admin.connect();
    try {
      await hub.ready();
      const ticks = hub.subscribe('tick');
      hub.publish('tick', 1);
      expect((await ticks.next()).value).toBe(1);
      // What a database restart does to the listening connection.
      const { rowCount } = await admin.query(
        `select pg_terminate_backend(pid) from pg_stat_activity where query = $1`,
        [`LISTEN ${channel}`],
      );
      expect(rowCount).toBe(1);
      await expect.poll(() => errors.join('\n'), { timeout: 10_000 }).toMatch(/listening again/);
      // Published until one arrives: the new connection listens at an instant we cannot see.
      const next = ticks.next();
      let received: number | undefined;
      void next.then((r) => (received = r.value as number));
      for (let n = 2; received === undefined && n < 200; n++) {
        hub.publish('tick', n);
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
      expect(received).toBeGreaterThan(1);
    } finally {
      await admin.end();
      await hub.close();
    }
  }, 60_000);

  it('refuses through ready() when the database cannot be reached at all', async () => {
    const hub = createPostgresEventHub({ connectionString: 'postgres://nobody@127.0.0.1:1/none' });
    await expect(hub.ready()).rejects.toThrow(/ECONNREFUSED|connect/);
    await hub.close();
  });
});

async function addImage(url: string, seed: number): Promise<string> {
  const form = new FormData();
  form.append(
    'operations',
    JSON.stringify({
      query:
        'mutation A($file: Upload!) { addImage(file: $file, label: "cat") { image { sha256 } } }',
      variables: { file: null },
    }),
  );
  form.append('map', JSON.stringify({ 0: ['variables.file'] }));
  const bytes = new Uint8Array(await makeImage(seed));
  form.append('0', new Blob([bytes], { type: 'image/jpeg' }), 'x.jpg');
  const response = await fetch(url, {
    method: 'POST',
    headers: { 'apollo-require-preflight': 'true', authorization: `Bearer ${TOKEN}` },
    body: form,
  });
  const body = (await response.json()) as { data: { addImage: { image: { sha256: string } } } };
  return body.data.addImage.image.sha256;
}
