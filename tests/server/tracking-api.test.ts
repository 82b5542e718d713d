import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makeImage, tempDir } from '../helpers/fixtures.js';
import { startTestServer, TOKENS, type TestServer } from '../helpers/server.js';

interface RunsPage {
  runs: {
    totalCount: number;
    pageInfo: { hasNextPage: boolean; endCursor: string | null };
    edges: { cursor: string; node: { id: string; name: string; status: string } }[];
  };
}

const RUNS = `query Runs($experiment: String, $filter: String, $orderBy: [String!], $first: Int!, $after: String) {
  runs(experiment: $experiment, filter: $filter, orderBy: $orderBy, first: $first, after: $after) {
    totalCount
    pageInfo { hasNextPage endCursor }
    edges { cursor node { id name status } }
  }
}`;

let t: TestServer;
const ids: string[] = [];
let evaluated: string;
let png: Buffer;
const roots = tempDir('menagerie-roots-');
const outside = tempDir('menagerie-outside-');

beforeAll(async () => {
  t = await startTestServer({ ingestRoots: [roots.dir] });
  const tracking = t.workspace.tracking;
  const faces = await tracking.createExperiment('faces', { tags: { team: 'vision' } });
  const other = await tracking.createExperiment('other');
  // Six runs in 'faces' with val_accuracy 0.5 … 1.0 and alternating optimizers.
  for (let i = 0; i < 6; i++) {
    const run = await tracking.createRun({
      experimentId: faces.id,
      name: `run-${i}`,
      startTime: 1_700_000_000_000 + i * 1000,
      tags: { team: i % 2 ? 'x' : 'y' },
    });
    await tracking.logParams(run.id, { optimizer: i % 2 ? 'adam' : 'sgd', units: 16 * (i + 1) });
    for (let epoch = 0; epoch < 3; epoch++) {
      await tracking.logMetrics(
        run.id,
        { loss: 1 / (epoch + 1 + i), val_accuracy: 0.5 + i * 0.1 - (2 - epoch) * 0.01 },
        { step: epoch, timestamp: 1_700_000_100_000 + epoch },
      );
    }
    ids.push(run.id);
  }
  const elsewhere = await tracking.createRun({ experimentId: other.id, name: 'elsewhere' });
  await tracking.logMetric(elsewhere.id, 'val_accuracy', Number.NaN, 0);
  await tracking.endRun(elsewhere.id, 'FAILED');

  // The trainer's evaluation artifacts, as it writes them beside the model.
  evaluated = ids[5]!;
  const modelDir = path.join(await tracking.artifactPath(evaluated), 'model');
  fs.mkdirSync(modelDir, { recursive: true });
  fs.writeFileSync(
    path.join(modelDir, 'evaluation.json'),
    JSON.stringify({
      loss: 0.1,
      accuracy: 0.9,
      labels: ['cat', 'dog'],
      confusionMatrix: [
        [9, 1],
        [1, 9],
      ],
      perClass: [
        { label: 'cat', precision: 0.9, recall: 0.9, f1: 0.9, support: 10 },
        { label: 'dog', precision: 0.9, recall: 0.9, f1: 0.9, support: 10 },
      ],
    }),
  );
  png = await makeImage(3, { width: 40, height: 40, format: 'png' });
  fs.writeFileSync(path.join(modelDir, 'confusion_matrix.png'), png);
  for (const id of ids.slice(0, 5)) await tracking.endRun(id, 'FINISHED');
  await tracking.endRun(evaluated, 'FINISHED');
});
afterAll(async () => {
  await t.dispose();
  roots.remove();
  outside.remove();
});

describe('experiments and runs', () => {
  it('lists experiments with tags and run counts; deleted ones only when asked', async () => {
    await t.workspace.tracking.createExperiment('gone');
    const gone = await t.workspace.tracking.getExperimentByName('gone');
    await t.workspace.tracking.deleteExperiment(gone!.id);
    const res = await t.gql<{
      experiments: { name: string; runCount: number; deleted: boolean; tags: unknown[] }[];
    }>('{ experiments { name runCount deleted tags { key value } } }');
    expect(res.errors).toBeUndefined();
    expect(res.data!.experiments).toEqual([
      { name: 'faces', runCount: 6, deleted: false, tags: [{ key: 'team', value: 'vision' }] },
      { name: 'other', runCount: 1, deleted: false, tags: [] },
    ]);
    const all = await t.gql<{ experiments: { name: string; deleted: boolean }[] }>(
      '{ experiments(includeDeleted: true) { name deleted } }',
    );
    expect(all.data!.experiments.at(-1)).toEqual({ name: 'gone', deleted: true });
    const one = await t.gql<{ experiment: { runs: RunsPage['runs'] } | null }>(
      `{ experiment(name: "faces") { runs(filter: "params.optimizer = 'adam'", first: 10) { totalCount edges { node { name } } } } }`,
    );
    expect(one.data!.experiment!.runs.totalCount).toBe(3);
    expect((await t.gql('{ experiment(name: "nope") { id } }')).data).toEqual({ experiment: null });
  });

  it('filters with the MLflow syntax, orders, and pages with cursors and a total', async () => {
    const filter = "metrics.val_accuracy > 0.65 AND tags.team = 'x'";
    const first = await t.gql<RunsPage>(RUNS, {
      experiment: 'faces',
      filter,
      orderBy: ['metrics.val_accuracy DESC'],
      first: 2,
    });
    expect(first.errors).toBeUndefined();
    expect(first.data!.runs.totalCount).toBe(2);
    expect(first.data!.runs.edges.map((e) => e.node.name)).toEqual(['run-5', 'run-3']);
    expect(first.data!.runs.pageInfo.hasNextPage).toBe(false);

    const names: string[] = [];
    let after: string | null = null;
    for (let page = 0; page < 5; page++) {
      const res: Awaited<ReturnType<typeof t.gql<RunsPage>>> = await t.gql<RunsPage>(RUNS, {
        experiment: 'faces',
        orderBy: ['params.units ASC'],
        first: 4,
        after,
      });
      expect(res.data!.runs.totalCount).toBe(6);
      names.push(...res.data!.runs.edges.map((e) => e.node.name));
      after = res.data!.runs.pageInfo.endCursor;
      if (!res.data!.runs.pageInfo.hasNextPage) break;
    }
    expect(names).toEqual(['run-0', 'run-1', 'run-2', 'run-3', 'run-4', 'run-5']);

    const all = await t.gql<RunsPage>(RUNS, { first: 50 });
    expect(all.data!.runs.totalCount).toBe(7);
    // A cursor of another search is refused.
    const mixed = await t.gql(RUNS, { filter, first: 1, after: all.data!.runs.edges[0]!.cursor });
    expect(mixed.errors?.[0]?.extensions?.code).toBe('CURSOR_INVALID');
  });

  it('refuses hostile filters with RUN_FILTER_INVALID and the parser message, and stays healthy', async () => {
    for (const filter of [
      "params.optimizer = 'adam'; DROP TABLE runs; --",
      'metrics.val_accuracy > 0.9 OR 1=1',
      "tags.team = 'x' UNION SELECT * FROM runs",
      "params.optimizer = 'adam",
      'unknown.key = 1',
      'metrics.val_accuracy >',
      '('.repeat(500),
      'x'.repeat(20_000),
    ]) {
      const res = await t.gql(RUNS, { filter, first: 5 });
      expect(res.errors?.[0]?.extensions?.code, filter.slice(0, 40)).toBe('RUN_FILTER_INVALID');
      expect(res.errors![0]!.message).toMatch(/invalid filter|filter/);
    }
    const badOrder = await t.gql(RUNS, { orderBy: ['metrics.x; DROP'], first: 5 });
    expect(badOrder.errors?.[0]?.extensions?.code).toBe('RUN_FILTER_INVALID');
    // Past SQLite's own limits ("too many terms"): refused by ours, with the limit named.
    const manyOrders = await t.gql(RUNS, {
      orderBy: Array.from({ length: 1000 }, (_, i) => `metrics.m${i} DESC`),
      first: 5,
    });
    expect(manyOrders.errors?.[0]?.extensions?.code).toBe('RUN_FILTER_INVALID');
    expect(manyOrders.errors![0]!.message).toMatch(/at most \d+ order-by/);
    const manyTerms = await t.gql(RUNS, {
      filter: Array.from({ length: 1000 }, (_, i) => `metrics.m${i} > 0`).join(' AND '),
      first: 5,
    });
    expect(manyTerms.errors?.[0]?.extensions?.code).toBe('RUN_FILTER_INVALID');
    // A quote inside a string matches literally instead of breaking out.
    const quoted = await t.gql<RunsPage>(RUNS, { filter: "params.`a` = ''' OR ''='", first: 5 });
    expect(quoted.data!.runs.totalCount).toBe(0);
    const literal = await t.gql<RunsPage>(RUNS, {
      filter: `params.optimizer = 'adam'' OR ''1'' = ''1'`,
      first: 5,
    });
    expect(literal.data!.runs.totalCount).toBe(0);
    expect((await t.get('/healthz')).status).toBe(200);
    expect((await t.gql<RunsPage>(RUNS, { first: 1 })).data!.runs.totalCount).toBe(7);
  });

  it('gives a run with params, latest metrics, history, tags, its evaluation and the PNG url', async () => {
    const res = await t.gql<{
      run: {
        name: string;
        status: string;
        experiment: { name: string };
        params: { key: string; value: string }[];
        latestMetrics: { key: string; value: number; step: number; timestamp: string }[];
        metricKeys: string[];
        history: { value: number; step: number }[];
        confusionMatrix: { labels: string[]; counts: number[][] } | null;
        classMetrics: { label: string; f1: number; support: number }[];
        confusionMatrixUrl: string | null;
        artifactUri: string;
        children: unknown[];
        registeredVersions: unknown[];
      };
    }>(
      `query Run($id: ID!) { run(id: $id) {
        name status experiment { name } params { key value }
        latestMetrics { key value step timestamp } metricKeys
        history: metricHistory(key: "val_accuracy") { value step }
        confusionMatrix { labels counts } classMetrics { label f1 support }
        confusionMatrixUrl artifactUri children { id } registeredVersions { name version }
      } }`,
      { id: evaluated },
    );
    expect(res.errors).toBeUndefined();
    const run = res.data!.run;
    expect(run).toMatchObject({ name: 'run-5', status: 'FINISHED', experiment: { name: 'faces' } });
    expect(run.params).toEqual([
      { key: 'optimizer', value: 'adam' },
      { key: 'units', value: '96' },
    ]);
    expect(run.metricKeys).toEqual(['loss', 'val_accuracy']);
    expect(run.latestMetrics.find((m) => m.key === 'val_accuracy')).toMatchObject({
      step: 2,
      timestamp: '1700000100002',
    });
    expect(run.history.map((m) => m.step)).toEqual([0, 1, 2]);
    expect(run.history[2]!.value).toBeCloseTo(1.0);
    expect(run.confusionMatrix).toEqual({
      labels: ['cat', 'dog'],
      counts: [
        [9, 1],
        [1, 9],
      ],
    });
    expect(run.classMetrics).toEqual([
      { label: 'cat', f1: 0.9, support: 10 },
      { label: 'dog', f1: 0.9, support: 10 },
    ]);
    expect(run.confusionMatrixUrl).toBe(`/runs/${evaluated}/artifacts/confusion_matrix.png`);
    expect(run.artifactUri).toMatch(/^file:\/\//);
    expect(run.children).toEqual([]);
    expect(run.registeredVersions).toEqual([]);

    const plain = await t.gql<{
      run: { confusionMatrix: unknown; classMetrics: unknown[]; confusionMatrixUrl: unknown };
    }>(
      `query Run($id: ID!) { run(id: $id) { confusionMatrix { labels } classMetrics { label } confusionMatrixUrl } }`,
      { id: ids[0] },
    );
    expect(plain.data!.run).toEqual({
      confusionMatrix: null,
      classMetrics: [],
      confusionMatrixUrl: null,
    });
    for (const id of ['0'.repeat(32), 'nope', "' OR 1=1 --"]) {
      expect((await t.gql('query R($id: ID!) { run(id: $id) { id } }', { id })).data).toEqual({
        run: null,
      });
    }
  });

  it('gives NaN metrics as null rather than failing the query', async () => {
    const res = await t.gql<
      RunsPage & { runs: { edges: { node: { latestMetrics: unknown[] } }[] } }
    >(`{ runs(experiment: "other", first: 5) { edges { node { latestMetrics { key value } } } } }`);
    expect(res.errors).toBeUndefined();
    expect(res.data!.runs.edges[0]!.node.latestMetrics).toEqual([
      { key: 'val_accuracy', value: null },
    ]);
  });
});

describe('GET /runs/:id/artifacts/confusion_matrix.png', () => {
  it('serves the run’s PNG', async () => {
    const res = await t.get(`/runs/${evaluated}/artifacts/confusion_matrix.png`);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toBe('image/png');
    const bytes = Buffer.from(await res.arrayBuffer());
    expect(bytes.equals(png)).toBe(true);
    expect((await sharp(bytes).metadata()).format).toBe('png');
  });

  it('answers 400 for ids that are not 32 hex digits and 404 for unknown runs or missing PNGs', async () => {
    const raw = (p: string) =>
      new Promise<number>((resolve, reject) => {
        const { hostname, port } = new URL(t.origin);
        http
          .get({ hostname, port, path: p }, (res) => {
            res.resume();
            resolve(res.statusCode ?? 0);
          })
          .on('error', reject);
      });
    for (const bad of [
      '..%2F..%2Fetc%2Fpasswd',
      'ABCDEF'.padEnd(32, '0'),
      '1',
      `${evaluated}0`,
      '%00',
    ]) {
      expect(await raw(`/runs/${bad}/artifacts/confusion_matrix.png`), bad).toBe(400);
    }
    expect(await raw(`/runs/../../etc/passwd/artifacts/confusion_matrix.png`)).toBe(404);
    const unknown = await t.get(`/runs/${'0'.repeat(32)}/artifacts/confusion_matrix.png`);
    expect(unknown.status).toBe(404);
    expect(((await unknown.json()) as { error: { code: string } }).error.code).toBe(
      'RUN_NOT_FOUND',
    );
    const missing = await t.get(`/runs/${ids[0]}/artifacts/confusion_matrix.png`);
    expect(missing.status).toBe(404);
    expect(((await missing.json()) as { error: { code: string } }).error.code).toBe(
      'RUN_ARTIFACT_NOT_FOUND',
    );
    // Only the one file name is routed.
    expect(await raw(`/runs/${evaluated}/artifacts/evaluation.json`)).toBe(404);
  });
});

describe('plugins', () => {
  it('lists model plugins with their spaces, and tuners', async () => {
    const res = await t.gql<{
      modelPlugins: {
        name: string;
        space: {
          name: string;
          type: string;
          min: number | null;
          values: string[] | null;
          default: string;
        }[];
      }[];
      tuners: { name: string }[];
    }>(
      '{ modelPlugins { name version description space { name type min max step sampling values default } } tuners { name description } }',
    );
    expect(res.errors).toBeUndefined();
    const cnn = res.data!.modelPlugins.find((p) => p.name === 'menagerie:cnn')!;
    expect(cnn.space.find((s) => s.name === 'conv1_filters')).toMatchObject({
      type: 'int',
      min: 32,
    });
    expect(cnn.space.find((s) => s.type === 'choice')?.values?.length).toBeGreaterThan(1);
    expect(res.data!.tuners.map((t) => t.name)).toEqual(
      expect.arrayContaining(['menagerie:random', 'menagerie:hyperband']),
    );
  });
});

describe('mutations', () => {
  it('refuse callers without a token, and read tokens', async () => {
    const mutations = [
      'mutation { startTraining(input: { plugin: "cnn" }) { id } }',
      'mutation { startTuning(input: { plugin: "cnn", tuner: "random" }) { id } }',
      `mutation { cancelRun(id: "${ids[0]}") { id } }`,
      `mutation { ingest(path: "${roots.dir}") }`,
    ];
    for (const mutation of mutations) {
      const res = await t.gql(mutation);
      expect(res.errors?.[0]?.extensions?.code, mutation).toBe('UNAUTHENTICATED');
      const read = await t.gql(mutation, {}, { token: TOKENS.read });
      expect(read.errors?.[0]?.extensions?.code, mutation).toBe('FORBIDDEN');
    }
    const ingest = await t.gql(
      `mutation { ingest(path: "${roots.dir}") }`,
      {},
      { token: TOKENS.write },
    );
    expect(ingest.errors?.[0]?.extensions?.code).toBe('FORBIDDEN');
  });

  it('check a training request before starting anything', async () => {
    const start = (input: Record<string, unknown>) =>
      t.gql(
        'mutation S($input: TrainingInput!) { startTraining(input: $input) { id } }',
        { input },
        { token: TOKENS.write },
      );
    expect((await start({ plugin: 'nope' })).errors?.[0]?.extensions?.code).toBe(
      'PLUGIN_NOT_FOUND',
    );
    expect(
      (await start({ plugin: 'cnn', hyperparameters: '{"conv1_filters": 7}' })).errors?.[0]
        ?.extensions?.code,
    ).toBe('HP_INVALID');
    expect(
      (await start({ plugin: 'cnn', hyperparameters: '{"bogus": 1}' })).errors?.[0]?.extensions
        ?.code,
    ).toBe('HP_INVALID');
    expect(
      (await start({ plugin: 'cnn', hyperparameters: '[1]' })).errors?.[0]?.extensions?.code,
    ).toBe('BAD_USER_INPUT');
    expect((await start({ plugin: 'cnn', epochs: 0 })).errors?.[0]?.extensions?.code).toBe(
      'BAD_USER_INPUT',
    );
    expect(t.server.services.jobs.running()).toEqual([]);
  });

  it('cancelRun refuses runs this server did not start', async () => {
    const tracking = t.workspace.tracking;
    const experiment = await tracking.getOrCreateExperiment('cli');
    const run = await tracking.createRun({ experimentId: experiment.id });
    const res = await t.gql(
      `mutation { cancelRun(id: "${run.id}") { id } }`,
      {},
      { token: TOKENS.write },
    );
    expect(res.errors?.[0]?.extensions?.code).toBe('RUN_NOT_OWNED');
    expect(res.errors?.[0]?.message).toMatch(/not started by this server/);
    const ended = await t.gql(
      `mutation { cancelRun(id: "${ids[0]}") { id } }`,
      {},
      { token: TOKENS.write },
    );
    expect(ended.errors?.[0]?.extensions?.code).toBe('RUN_NOT_ACTIVE');
    await tracking.endRun(run.id, 'FINISHED');
  });

  it('ingest reads only folders inside the roots, symlinks and .. resolved', async () => {
    const ingest = (p: string) =>
      t.gql<{ ingest: string }>(
        'mutation I($p: String!) { ingest(path: $p) }',
        { p },
        { token: TOKENS.admin },
      );
    const cat = path.join(outside.dir, 'cat');
    fs.mkdirSync(cat, { recursive: true });
    fs.writeFileSync(path.join(cat, 'a.png'), await makeImage(1, { format: 'png' }));
    fs.symlinkSync(outside.dir, path.join(roots.dir, 'escape'));
    for (const p of [
      outside.dir,
      path.join(roots.dir, '..'),
      `${roots.dir}/../${path.basename(outside.dir)}`,
      path.join(roots.dir, 'escape'),
      '/etc',
      'relative/path',
      '',
    ]) {
      const res = await ingest(p);
      expect(res.errors?.[0]?.extensions?.code, p).toBe('INGEST_PATH_FORBIDDEN');
    }
    fs.writeFileSync(
      path.join(roots.dir, 'manifest.csv'),
      `path,label\n${path.join(cat, 'a.png')},cat\n`,
    );
    expect((await ingest(path.join(roots.dir, 'manifest.csv'))).errors?.[0]?.extensions?.code).toBe(
      'INGEST_PATH_FORBIDDEN',
    );
    expect((await ingest(path.join(roots.dir, 'missing'))).errors?.[0]?.extensions?.code).toBe(
      'INGEST_SOURCE_NOT_FOUND',
    );
    expect(
      (await t.gql<{ imageStats: { totalCount: number } }>('{ imageStats { totalCount } }')).data!
        .imageStats.totalCount,
    ).toBe(0);

    const inside = path.join(roots.dir, 'faces', 'dog');
    fs.mkdirSync(inside, { recursive: true });
    fs.writeFileSync(path.join(inside, 'b.png'), await makeImage(2, { format: 'png' }));
    const ok = await ingest(path.join(roots.dir, 'faces'));
    expect(ok.errors).toBeUndefined();
    expect(ok.data!.ingest).toMatch(/^added 1 of 1 files/);
  });

  it('ingest is refused when the server has no roots', async () => {
    const bare = await startTestServer();
    try {
      const res = await bare.gql(
        `mutation { ingest(path: "${roots.dir}") }`,
        {},
        { token: TOKENS.admin },
      );
      expect(res.errors?.[0]?.extensions?.code).toBe('INGEST_PATH_FORBIDDEN');
      expect(res.errors?.[0]?.message).toMatch(/no ingest roots/);
    } finally {
      await bare.dispose();
    }
  });
});
