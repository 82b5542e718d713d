import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli } from '../helpers/cli.js';
import { makeImage } from '../helpers/fixtures.js';
import { startTestServer, TOKENS, type TestServer } from '../helpers/server.js';
import { PREDICT, registerTinyModel, type PredictData } from '../helpers/serving.js';

const LABELS = ['cat', 'dog', 'wild'];
const FEEDBACK = `mutation($id: ID!) { submitFeedback(predictionId: $id, correctLabel: "dog") { id } }`;
const DAY = 24 * 60 * 60 * 1000;

const codeOf = (res: { errors?: { extensions?: { code?: string } }[] }) =>
  res.errors?.[0]?.extensions?.code;

/** A server over a fresh workspace whose `faces` champion is a tiny real model. */
async function servingServer(config: Parameters<typeof startTestServer>[0] = {}) {
  const t = await startTestServer({ computeEmbeddings: false, ...config });
  const version = await registerTinyModel(t, 'faces', { labels: LABELS });
  await t.server.services.registry.promoteChampion('faces', version.version);
  await t.server.services.serving.championMoved('faces');
  return t;
}

const predict = (t: TestServer, bytes: Uint8Array) =>
  t.upload<PredictData>(PREDICT, { file: null }, [{ path: 'variables.file', file: { bytes } }]);

async function storedBlobs(t: TestServer): Promise<string[]> {
  const uris: string[] = [];
  for await (const blob of t.workspace.blobs.list!()) uris.push(blob.uri);
  return uris;
}

describe('a read-only server keeps no upload', () => {
  let t: TestServer;
  beforeAll(async () => {
    t = await servingServer({ readOnly: true });
  });
  afterAll(() => t.dispose());

  it('predicts and records the prediction, but stores none of the bytes', async () => {
    const before = await storedBlobs(t);
    for (let seed = 1; seed <= 3; seed++) {
      const res = await predict(t, await makeImage(seed));
      expect(res.errors).toBeUndefined();
    }
    expect(await storedBlobs(t)).toEqual(before);
    const rows = await t.workspace.database.db.selectFrom('predictions').selectAll().execute();
    expect(rows).toHaveLength(3);
    for (const row of rows) expect(row.blob_uri).toBeNull();
  });
});

describe('uploads are kept for feedback under a size budget', () => {
  let t: TestServer;
  let sizes: number[];
  const ids: string[] = [];
  beforeAll(async () => {
    const images = await Promise.all([1, 2, 3, 4, 5].map((seed) => makeImage(seed, { size: 96 })));
    sizes = images.map((i) => i.length);
    // Room for the two largest, not for three.
    const budget = [...sizes]
      .sort((a, b) => b - a)
      .slice(0, 2)
      .reduce((a, b) => a + b, 0);
    t = await servingServer({ uploadRetention: { maxBytes: budget } });
    for (const image of images) {
      const res = await predict(t, image);
      expect(res.errors).toBeUndefined();
      ids.push(res.data!.predict.id);
    }
  });
  afterAll(() => t.dispose());

  it('keeps the newest uploads within the budget, and no more', async () => {
    const rows = await t.workspace.database.db
      .selectFrom('predictions')
      .select(['id', 'blob_uri'])
      .orderBy('id')
      .execute();
    const kept = rows.filter((r) => r.blob_uri !== null);
    expect(kept.length).toBeGreaterThanOrEqual(1);
    expect(kept.length).toBeLessThanOrEqual(2);
    expect(kept.at(-1)!.id).toBe(Number(ids.at(-1)));
    expect(await storedBlobs(t)).toHaveLength(kept.length);
  });

  it('feedback on an upload no longer kept is PREDICTION_UPLOAD_EXPIRED; on a kept one it adds the image', async () => {
    const expired = await t.gql(FEEDBACK, { id: ids[0] }, { token: TOKENS.write });
    expect(codeOf(expired)).toBe('PREDICTION_UPLOAD_EXPIRED');
    const kept = await t.gql(FEEDBACK, { id: ids.at(-1) }, { token: TOKENS.write });
    expect(kept.errors).toBeUndefined();
  });

  it('`menagerie gc` expires uploads past their age, and never an image feedback added', async () => {
    const db = t.workspace.database.db;
    await db
      .updateTable('predictions')
      .set({ created_at: Date.now() - 10 * DAY })
      .execute();
    const gc = runCli(['gc', '--data-dir', t.workspace.dataDir, '--upload-max-age', '7']);
    expect(gc.code, gc.stderr).toBe(0);
    expect(gc.stdout).toMatch(/expired \d+ kept uploads?/);
    const rows = await db.selectFrom('predictions').select(['id', 'blob_uri']).execute();
    const withFeedback = rows.find((r) => r.id === Number(ids.at(-1)))!;
    // The feedback image's bytes are the data set's now: the image row still names them.
    const images = await db.selectFrom('images').select('uri').execute();
    expect(images).toHaveLength(1);
    expect(await storedBlobs(t)).toEqual([images[0]!.uri]);
    for (const row of rows.filter((r) => r !== withFeedback)) expect(row.blob_uri).toBeNull();
    const res = await t.get(
      `/images/${(await db.selectFrom('images').select('id').executeTakeFirstOrThrow()).id}`,
    );
    expect(res.status).toBe(200);
  });
});
