import fs from 'node:fs';
import path from 'node:path';
import { createClient, type Client } from 'graphql-ws';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { registerModelArtifact } from '../../registry/register-model.js';
import {
  COLOUR_IMAGES,
  solidPng,
  UNKNOWN_COLOUR_IMAGES,
  writeColourFolder,
} from '../helpers/evaluation-data.js';
import { makeImage, tempDir, writeFile } from '../helpers/fixtures.js';
import { saveColourModel } from '../helpers/models.js';
import { startTestServer, TOKENS, type TestServer } from '../helpers/server.js';

const FIXTURE_CONFIG = path.resolve(
  import.meta.dirname,
  '../fixtures/plugins/menagerie.config.json',
);

const EVALUATE = `mutation E($input: EvaluateModelInput!) {
  evaluateModel(input: $input) { id status modelVersion { name version } dataset { kind source } }
}`;

const DETAIL = `query D($id: ID!) {
  evaluation(id: $id) {
    id status error createdBy done total
    dataset { kind source imageCount sha256 }
    accuracy loss macroPrecision macroRecall macroF1 ece
    classMetrics { label precision recall f1 support }
    confusionMatrix { labels counts }
    confusionMatrixUrl
    reliability { lower upper count accuracy confidence }
    worstErrors {
      rank source trueLabel predictedLabel confidence sha256 format url thumbnailUrl(size: 64)
      probabilities { label probability }
      image { id }
    }
    unreadable { path reason detail }
    unknownLabels { label count }
  }
}`;

interface Detail {
  id: string;
  status: string;
  error: string | null;
  createdBy: string;
  done: number;
  total: number;
  dataset: { kind: string; source: string; imageCount: number; sha256: string };
  accuracy: number;
  ece: number;
  classMetrics: { label: string; f1: number; support: number }[];
  confusionMatrix: { labels: string[]; counts: number[][] };
  confusionMatrixUrl: string;
  reliability: { count: number }[];
  worstErrors: {
    rank: number;
    source: string;
    trueLabel: string;
    predictedLabel: string;
    confidence: number;
    url: string;
    thumbnailUrl: string;
    probabilities: { label: string; probability: number }[];
    image: { id: string } | null;
  }[];
  unreadable: { path: string; reason: string }[];
  unknownLabels: { label: string; count: number }[];
}

interface Progress {
  evaluationId: string;
  status: string;
  done: number | null;
  total: number | null;
  final: boolean;
}

describe('evaluations over GraphQL: a job, its progress, its results', () => {
  const roots = tempDir('menagerie-eval-roots-');
  const outside = tempDir('menagerie-eval-outside-');
  const folder = path.join(roots.dir, 'holdout');
  let t: TestServer;
  let client: Client;

  /** `token` null sends none. */
  const evaluate = (input: Record<string, unknown>, token: string | null = TOKENS.write) =>
    t.gql<{ evaluateModel: { id: string; status: string; dataset: { kind: string } } }>(
      EVALUATE,
      { input },
      token === null ? {} : { token },
    );
  const detail = async (id: string) => (await t.gql<{ evaluation: Detail }>(DETAIL, { id })).data!;

  /** Every progress update of an evaluation until the stream ends. */
  const follow = async (id: string): Promise<Progress[]> => {
    const updates: Progress[] = [];
    for await (const result of client.iterate<{ evaluationProgress: Progress }>({
      query:
        'subscription P($id: ID!) { evaluationProgress(id: $id) { evaluationId status done total final } }',
      variables: { id },
    })) {
      if (result.errors) throw new Error(JSON.stringify(result.errors));
      updates.push(result.data!.evaluationProgress);
    }
    return updates;
  };

  beforeAll(async () => {
    await writeColourFolder(folder);
    writeFile(path.join(outside.dir, 'red', 'pure.png'), await solidPng([255, 0, 0]));
    fs.symlinkSync(outside.dir, path.join(roots.dir, 'escape'));
    writeFile(path.join(roots.dir, 'manifest.csv'), 'path,label\nholdout/red/pure.png,red\n');

    t = await startTestServer(
      {
        ingestRoots: [roots.dir],
        computeEmbeddings: false,
        servingModel: 'colours',
        jobs: { maxJobs: 1, killGraceMs: 20_000 },
      },
      { pluginConfig: FIXTURE_CONFIG },
    );
    const dir = path.join(t.workspace.dataDir, 'colour-model');
    await saveColourModel(dir);
    const { registry, images } = t.server.services;
    await registerModelArtifact(registry, t.workspace.plugins, { name: 'colours', dir });
    await registry.promoteChampion('colours', 1);
    for (const image of [...COLOUR_IMAGES, ...UNKNOWN_COLOUR_IMAGES])
      await images.add(await solidPng(image.rgb), { label: image.label, split: 'val' });
    // Training images, for the held training job that fills the job slot below.
    for (const [i, label] of ['red', 'green', 'blue'].entries())
      for (let n = 0; n < 4; n++)
        await images.add(await makeImage(100 + i * 10 + n, { size: 16 }), {
          label,
          split: 'train',
        });
    client = createClient({
      url: t.server.url.replace(/^http/, 'ws'),
      webSocketImpl: WebSocket,
      lazy: false,
    });
  }, 120_000);

  afterAll(async () => {
    await client?.dispose();
    await t?.dispose();
    roots.remove();
    outside.remove();
  });

  it('refuses without a token, with a read token, outside the ingest roots, and without one data source', async () => {
    for (const [input, token, code] of [
      [{ model: 'colours@champion', split: 'VAL' }, null, 'UNAUTHENTICATED'],
      [{ model: 'colours@champion', split: 'VAL' }, TOKENS.read, 'FORBIDDEN'],
      [{ model: 'colours@champion', folder: outside.dir }, TOKENS.write, 'INGEST_PATH_FORBIDDEN'],
      [
        { model: 'colours@champion', folder: path.join(roots.dir, 'escape') },
        TOKENS.write,
        'INGEST_PATH_FORBIDDEN',
      ],
      [
        {
          model: 'colours@champion',
          folder: path.join(roots.dir, '..', path.basename(outside.dir)),
        },
        TOKENS.write,
        'INGEST_PATH_FORBIDDEN',
      ],
      [
        { model: 'colours@champion', folder: path.join(roots.dir, 'manifest.csv') },
        TOKENS.write,
        'INGEST_PATH_FORBIDDEN',
      ],
      [
        { model: 'colours@champion', folder: path.join(roots.dir, 'gone') },
        TOKENS.write,
        'INGEST_SOURCE_NOT_FOUND',
      ],
      [{ model: 'colours@champion' }, TOKENS.write, 'BAD_USER_INPUT'],
      [{ model: 'colours@champion', split: 'VAL', folder }, TOKENS.write, 'BAD_USER_INPUT'],
      [{ model: 'colours', split: 'VAL' }, TOKENS.write, 'MODEL_URI_INVALID'],
      [{ model: 'models:/nope@champion', split: 'VAL' }, TOKENS.write, 'MODEL_NOT_FOUND'],
    ] as const) {
      const res = await evaluate(input, token);
      expect(res.errors?.[0]?.extensions?.code, JSON.stringify(input)).toBe(code);
    }
    expect(t.server.services.jobs.running()).toEqual([]);
    const listed = await t.gql<{ modelVersion: { evaluations: unknown[] } }>(
      '{ modelVersion(name: "colours", version: 1) { evaluations { id } } }',
    );
    expect(listed.data!.modelVersion.evaluations).toEqual([]);
  });

  it('runs a folder evaluation as a job: progress until FINISHED, then every result', async () => {
    const started = await evaluate({ model: 'models:/colours@champion', folder });
    expect(started.errors).toBeUndefined();
    const { id, status, dataset } = started.data!.evaluateModel;
    expect({ status, kind: dataset.kind }).toEqual({ status: 'RUNNING', kind: 'FOLDER' });

    const updates = await follow(id);
    expect(updates.at(-1)).toMatchObject({ evaluationId: id, status: 'FINISHED', final: true });
    expect(updates.filter((u) => u.final)).toHaveLength(1);

    const e = (await detail(id)).evaluation;
    expect(e).toMatchObject({
      status: 'FINISHED',
      error: null,
      createdBy: 'api:write',
      done: 12,
      total: 12,
      dataset: { kind: 'FOLDER', source: fs.realpathSync(folder), imageCount: 9 },
      confusionMatrix: { labels: ['red', 'green', 'blue'] },
      unknownLabels: [{ label: 'purple', count: 2 }],
    });
    expect(e.accuracy).toBeCloseTo(6 / 9, 12);
    expect(e.ece).toBeGreaterThan(0);
    expect(e.classMetrics.map((c) => c.support)).toEqual([3, 3, 3]);
    expect(e.reliability.map((b) => b.count).reduce((a, b) => a + b, 0)).toBe(9);
    expect(e.unreadable.map((u) => u.reason).sort()).toEqual([
      'empty',
      'unknown-folder',
      'unreadable',
      'unreadable',
    ]);
    expect(e.worstErrors.map((w) => [w.rank, w.trueLabel, w.predictedLabel])).toEqual([
      [1, 'blue', 'green'],
      [2, 'green', 'red'],
      [3, 'red', 'green'],
    ]);

    // Each worst error's image, and its thumbnail, served from the blob store.
    for (const w of e.worstErrors) {
      expect(w.image).toBeNull();
      expect(w.probabilities.map((p) => p.label)).toEqual(['red', 'green', 'blue']);
      const original = await t.get(w.url);
      expect(original.headers.get('content-type')).toBe('image/png');
      expect(Buffer.from(await original.arrayBuffer())).toEqual(fs.readFileSync(w.source));
      const thumb = await t.get(w.thumbnailUrl);
      expect(thumb.headers.get('content-type')).toBe('image/webp');
      const again = await t.get(w.url, { 'if-none-match': original.headers.get('etag')! });
      expect(again.status).toBe(304);
    }
    const png = await t.get(e.confusionMatrixUrl);
    expect(png.status).toBe(200);
    expect(png.headers.get('content-type')).toBe('image/png');

    // Listed with its version, and found from the registered model's versions.
    const listed = await t.gql<{
      registeredModel: { versions: { edges: { node: { evaluations: { id: string }[] } }[] } };
    }>(
      '{ registeredModel(name: "colours") { versions { edges { node { evaluations { id } } } } } }',
    );
    expect(listed.data!.registeredModel.versions.edges[0]!.node.evaluations).toEqual([{ id }]);
    // A subscriber to an ended evaluation gets its one final state.
    expect(await follow(id)).toEqual([
      { evaluationId: id, status: 'FINISHED', done: 12, total: 12, final: true },
    ]);
  }, 120_000);

  it('evaluates a split, its worst errors linked to the catalogue images', async () => {
    const started = await evaluate({ model: 'colours/1', split: 'VAL' });
    expect(started.errors).toBeUndefined();
    const id = started.data!.evaluateModel.id;
    expect((await follow(id)).at(-1)).toMatchObject({ status: 'FINISHED' });
    const e = (await detail(id)).evaluation;
    expect(e.dataset).toMatchObject({ kind: 'SPLIT', source: 'val', imageCount: 9 });
    const folderRun = (await t.server.services.evaluations.list('colours', 1)).find(
      (x) => x.dataset.kind === 'folder',
    )!;
    expect(e.dataset.sha256).toBe(folderRun.dataset.sha256);
    for (const w of e.worstErrors) {
      expect(w.image).not.toBeNull();
      expect(w.source).toBe(`image #${w.image!.id}`);
    }
  }, 120_000);

  it('a split without images fails the mutation with the child’s code', async () => {
    const res = await evaluate({ model: 'colours/1', split: 'TEST' });
    expect(res.errors?.[0]?.extensions?.code).toBe('DATASET_EMPTY');
    expect(t.server.services.jobs.running()).toEqual([]);
  }, 60_000);

  it('shares the job limit with training', async () => {
    // Held after epoch 1 until cancelled: it holds the one job slot until the cancel lands.
    const training = await t.gql<{ startTraining: { id: string } }>(
      'mutation { startTraining(input: { plugin: "tiny-mlp-held", epochs: 50, batchSize: 4, hyperparameters: "{\\"hold_from\\": 1}" }) { id } }',
      {},
      { token: TOKENS.write },
    );
    expect(training.errors).toBeUndefined();
    const runId = training.data!.startTraining.id;
    const refused = await evaluate({ model: 'colours/1', split: 'VAL' });
    expect(refused.errors?.[0]?.extensions?.code).toBe('JOB_LIMIT');
    const cancelled = await t.gql(
      `mutation { cancelRun(id: "${runId}") { status } }`,
      {},
      {
        token: TOKENS.write,
      },
    );
    expect(cancelled.data).toEqual({ cancelRun: { status: 'KILLED' } });
    expect(t.server.services.jobs.running()).toEqual([]);
  }, 120_000);

  it('answers the evaluation routes with codes for bad or unknown ids and ranks', async () => {
    const [done] = await t.server.services.evaluations.list('colours', 1);
    for (const [url, status, code] of [
      ['/evaluations/nope/confusion_matrix.png', 400, 'BAD_REQUEST'],
      [`/evaluations/${'0'.repeat(32)}/confusion_matrix.png`, 404, 'EVALUATION_NOT_FOUND'],
      [`/evaluations/${done!.id}/errors/0`, 400, 'BAD_REQUEST'],
      [`/evaluations/${done!.id}/errors/99`, 404, 'EVALUATION_NOT_FOUND'],
      [`/evaluations/${done!.id}/errors/..%2F..%2Fetc`, 400, 'BAD_REQUEST'],
    ] as const) {
      const res = await t.get(url);
      expect(res.status, url).toBe(status);
      expect(((await res.json()) as { error: { code: string } }).error.code, url).toBe(code);
    }
    const unknown = await t.gql<{ evaluation: null }>(DETAIL, { id: '0'.repeat(32) });
    expect(unknown.data).toEqual({ evaluation: null });
  });
});
