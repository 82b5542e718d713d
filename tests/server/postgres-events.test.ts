import path from 'node:path';
import { createClient, type Client } from 'graphql-ws';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { openWorkspace, type Workspace } from '../../cli/workspace.js';
import { createServer, type MenagerieServer } from '../../server/create-server.js';
import { databaseBackend, DATABASE_BACKENDS, SERVICE_START_TIMEOUT } from '../helpers/backends.js';
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
