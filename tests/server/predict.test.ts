import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makeImage } from '../helpers/fixtures.js';
import { startTestServer, TOKENS, type TestServer } from '../helpers/server.js';
import {
  addImages,
  embedInProcess,
  PREDICT,
  registerTinyModel,
  type PredictData,
} from '../helpers/serving.js';

const LABELS = ['cat', 'dog', 'wild'];
const PROMOTE = `mutation($v: Int!) { promoteChampion(name: "faces", version: $v, comment: "test") { version stage aliases } }`;

let t: TestServer;
let jpeg: Buffer;

beforeAll(async () => {
  t = await startTestServer({ computeEmbeddings: false });
  jpeg = await makeImage(1, { size: 64 });
  await addImages(t, LABELS, 4);
  await registerTinyModel(t, 'faces', { labels: LABELS, seed: 1 });
  // Another label order and seed: its answers are told apart by modelVersion.
  await registerTinyModel(t, 'faces', { labels: ['wild', 'dog', 'cat'], seed: 7 });
});
afterAll(() => t.dispose());

const codeOf = (res: { errors?: { extensions?: { code?: string } }[] }) =>
  res.errors?.[0]?.extensions?.code;

const predict = (bytes: Uint8Array, variables: Record<string, unknown> = {}) =>
  t.upload<PredictData>(PREDICT, { file: null, ...variables }, [
    { path: 'variables.file', file: { bytes, type: 'application/octet-stream' } },
  ]);

const promote = (version: number) => t.gql(PROMOTE, { v: version }, { token: TOKENS.write });

async function expectHealthy() {
  expect((await t.get('/healthz')).status).toBe(200);
  const ready = await t.get('/readyz');
  expect(ready.status).toBe(200);
  const res = await t.gql<{ labels: { name: string }[] }>('{ labels { name } }');
  expect(res.errors).toBeUndefined();
}

describe('predict over HTTP', () => {
  it('answers MODEL_NOT_SERVING while there is no champion, and the server stays ready', async () => {
    const res = await predict(jpeg);
    expect(codeOf(res)).toBe('MODEL_NOT_SERVING');
    const serving = await t.gql<{
      serving: { modelName: string; model: unknown; labels: string[] };
    }>('{ serving { modelName model { version } labels loadedAt } }');
    expect(serving.data?.serving).toMatchObject({ modelName: 'faces', model: null, labels: [] });
    // No champion at all: nothing to wait for, so /readyz says ready (documented choice).
    await expectHealthy();
    const rows = await t.workspace.database.db.selectFrom('predictions').selectAll().execute();
    expect(rows).toHaveLength(0);
  });

  it('serves the champion promoted through GraphQL: label, probabilities, version, latency, similar', async () => {
    expect((await promote(1)).errors).toBeUndefined();
    const sent = Date.now();
    const res = await predict(jpeg);
    const answered = Date.now();
    expect(res.errors).toBeUndefined();
    const p = res.data!.predict;
    expect(LABELS).toContain(p.label);
    expect(p.modelVersion).toEqual({ name: 'faces', version: 1 });
    expect(p.probabilities).toHaveLength(3);
    expect(p.probabilities[0]).toEqual({ label: p.label, probability: p.confidence });
    const ps = p.probabilities.map((c) => c.probability);
    expect([...ps].sort((a, b) => b - a)).toEqual(ps);
    expect(ps.reduce((a, b) => a + b, 0)).toBeCloseTo(1, 4);
    expect(p.latencyMs).toBeGreaterThan(0);
    // Recorded while the request was served (same process, same clock).
    expect(Number(p.createdAt)).toBeGreaterThanOrEqual(sent);
    expect(Number(p.createdAt)).toBeLessThanOrEqual(answered);
    // Embeddings not computed yet: random images of the predicted label, said so.
    expect(p.similar.method).toBe('RANDOM');
    expect(p.similar.reason).toMatch(/never computed/);
    expect(p.similar.images).toHaveLength(4);
    for (const s of p.similar.images) {
      expect(s.image.label.name).toBe(p.label);
      expect(s.distance).toBeNull();
    }
    const row = await t.workspace.database.db
      .selectFrom('predictions')
      .selectAll()
      .where('id', '=', Number(p.id))
      .executeTakeFirstOrThrow();
    expect(row).toMatchObject({ model_name: 'faces', model_version: 1, label: p.label });
    expect(JSON.parse(row.probabilities)).toHaveLength(3);
    expect((await t.workspace.blobs.get(row.blob_uri!)).equals(jpeg)).toBe(true);

    const ready = (await (await t.get('/readyz')).json()) as {
      checks: { name: string; ok: boolean }[];
    };
    expect(ready.checks).toContainEqual({ name: 'model', ok: true });
    const serving = await t.gql<{
      serving: { model: { version: number }; labels: string[]; loadedAt: string };
    }>('{ serving { model { version } labels loadedAt } }');
    expect(serving.data?.serving.model.version).toBe(1);
    expect(serving.data?.serving.labels).toEqual(LABELS);
    expect(Number(serving.data?.serving.loadedAt)).toBeGreaterThan(0);
  });

  it('topK limits the probabilities listed; null lists all; 0 is refused', async () => {
    expect((await predict(jpeg, { topK: 1 })).data?.predict.probabilities).toHaveLength(1);
    expect((await predict(jpeg, { topK: null })).data?.predict.probabilities).toHaveLength(3);
    expect(codeOf(await predict(jpeg, { topK: 0 }))).toBe('BAD_USER_INPUT');
  });

  it('similar images come from embeddings once the version has them (nearest first)', async () => {
    const job = await embedInProcess(t, 'faces', 1);
    expect(job.status).toBe('READY');
    const p = (await predict(jpeg)).data!.predict;
    expect(p.similar.method).toBe('EMBEDDING');
    expect(p.similar.images.length).toBeGreaterThan(0);
    const distances = p.similar.images.map((s) => s.distance!);
    expect([...distances].sort((a, b) => a - b)).toEqual(distances);
    for (const s of p.similar.images) expect(s.image.label.name).toBe(p.label);

    // Image.similar: the same space, the image itself left out.
    const first = p.similar.images[0]!.image.id;
    const res = await t.gql<{
      image: { similar: { method: string; images: { image: { id: string } }[] } };
    }>('query($id: ID!) { image(id: $id) { similar(k: 3) { method images { image { id } } } } }', {
      id: first,
    });
    expect(res.data?.image.similar.method).toBe('EMBEDDING');
    expect(res.data?.image.similar.images.map((s) => s.image.id)).not.toContain(first);
    const status = await t.gql<{
      modelVersion: { embeddingStatus: string; embeddingProgress: number };
    }>('{ modelVersion(name: "faces", version: 1) { embeddingStatus embeddingProgress } }');
    expect(status.data?.modelVersion).toEqual({ embeddingStatus: 'READY', embeddingProgress: 1 });
  });

  it('predictBatch answers each upload in order', async () => {
    const files = [jpeg, await makeImage(2, { format: 'png' })];
    const res = await t.upload<{
      predictBatch: { id: string; modelVersion: { version: number } }[];
    }>(
      'mutation($files: [Upload!]!) { predictBatch(files: $files) { id modelVersion { version } } }',
      { files: [null, null] },
      files.map((bytes, i) => ({ path: `variables.files.${i}`, file: { bytes } })),
    );
    expect(res.errors).toBeUndefined();
    expect(res.data?.predictBatch).toHaveLength(2);
    expect(new Set(res.data?.predictBatch.map((p) => p.id)).size).toBe(2);
  });
});

describe('promotion through GraphQL', () => {
  it('changes which version answers the next predict', async () => {
    expect((await predict(jpeg)).data?.predict.modelVersion.version).toBe(1);
    const res = await promote(2);
    expect(res.data).toEqual({
      promoteChampion: { version: 2, stage: 'PRODUCTION', aliases: ['champion'] },
    });
    const p = (await predict(jpeg)).data!.predict;
    expect(p.modelVersion.version).toBe(2);
    // Version 2 has never been embedded: similar falls back, and says so.
    expect(p.similar.method).toBe('RANDOM');
  });

  it('loses no request when the champion moves under a stream of predicts', async () => {
    const images = await Promise.all(Array.from({ length: 8 }, (_, i) => makeImage(50 + i)));
    const requests: Promise<Awaited<ReturnType<typeof predict>>>[] = [];
    for (let i = 0; i < 48; i++) {
      requests.push(predict(images[i % images.length]!));
      if (i === 16) requests.push(promote(1) as never);
      if (i === 32) requests.push(promote(2) as never);
    }
    const answers = await Promise.all(requests);
    const predictions = answers.filter((a) => a.data && 'predict' in a.data);
    expect(answers.filter((a) => a.errors)).toEqual([]);
    expect(predictions).toHaveLength(48);
    const versions = new Set(predictions.map((a) => a.data!.predict.modelVersion.version));
    expect([...versions].every((v) => v === 1 || v === 2)).toBe(true);
    expect((await predict(jpeg)).data?.predict.modelVersion.version).toBe(2);
    await expectHealthy();
  });
});

// Bad uploads to predict (and addImage, predictBatch): one table in bad-input.test.ts.

describe('submitFeedback', () => {
  const FEEDBACK = `mutation($id: ID!, $label: String!) {
    submitFeedback(predictionId: $id, correctLabel: $label) { id sha256 split label { name } }
  }`;

  it('needs a write token', async () => {
    const p = (await predict(await makeImage(70))).data!.predict;
    expect(codeOf(await t.gql(FEEDBACK, { id: p.id, label: 'wild' }))).toBe('UNAUTHENTICATED');
    expect(codeOf(await t.gql(FEEDBACK, { id: p.id, label: 'wild' }, { token: TOKENS.read }))).toBe(
      'FORBIDDEN',
    );
  });

  it('adds the judged upload to train with the corrected label, and records the feedback', async () => {
    const upload = await makeImage(71);
    const p = (await predict(upload)).data!.predict;
    const before = (await t.server.services.images.stats()).totalCount;
    const res = await t.gql<{
      submitFeedback: { id: string; split: string; label: { name: string } };
    }>(FEEDBACK, { id: p.id, label: 'Wild' }, { token: TOKENS.write });
    expect(res.errors).toBeUndefined();
    expect(res.data?.submitFeedback).toMatchObject({ split: 'TRAIN', label: { name: 'wild' } });
    expect((await t.server.services.images.stats()).totalCount).toBe(before + 1);
    const stored = await t.get(`/images/${res.data!.submitFeedback.id}`);
    expect(Buffer.from(await stored.arrayBuffer()).equals(upload)).toBe(true);
    const row = await t.workspace.database.db
      .selectFrom('predictions')
      .selectAll()
      .where('id', '=', Number(p.id))
      .executeTakeFirstOrThrow();
    expect(row.feedback_label).toBe('wild');
    expect(row.feedback_image_id).toBe(Number(res.data!.submitFeedback.id));
    expect(row.feedback_at).toBeGreaterThan(0);

    // The same bytes judged again: that image, relabelled, not a second copy.
    const again = (await predict(upload)).data!.predict;
    const relabelled = await t.gql<{ submitFeedback: { id: string; label: { name: string } } }>(
      FEEDBACK,
      { id: again.id, label: 'dog' },
      { token: TOKENS.write },
    );
    expect(relabelled.data?.submitFeedback).toMatchObject({
      id: res.data!.submitFeedback.id,
      label: { name: 'dog' },
    });
    expect((await t.server.services.images.stats()).totalCount).toBe(before + 1);
  });

  it('an unknown prediction → PREDICTION_NOT_FOUND; a bad label → LABEL_INVALID', async () => {
    expect(
      codeOf(await t.gql(FEEDBACK, { id: '999999', label: 'cat' }, { token: TOKENS.write })),
    ).toBe('PREDICTION_NOT_FOUND');
    const p = (await predict(jpeg)).data!.predict;
    expect(codeOf(await t.gql(FEEDBACK, { id: p.id, label: '   ' }, { token: TOKENS.write }))).toBe(
      'LABEL_INVALID',
    );
  });
});
