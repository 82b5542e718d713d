import path from 'node:path';
import { createClient, type Client } from 'graphql-ws';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { openWorkspace, type Workspace } from '../../cli/workspace.js';
import { writeDemoDataset } from '../../demo/demo-dataset.js';
import { ingestImages } from '../../data/ingest/ingest.js';
import { createServer, type MenagerieServer } from '../../server/create-server.js';
import { waitFor } from '../helpers/wait-for.js';
import { tempDir } from '../helpers/fixtures.js';
import { TOKENS } from '../helpers/server.js';

const FIXTURE_CONFIG = path.resolve(
  import.meta.dirname,
  '../fixtures/plugins/menagerie.config.json',
);

interface Progress {
  runId: string;
  parentRunId: string | null;
  status: string;
  epoch: number | null;
  epochs: number | null;
  metrics: { key: string; value: number | null; step: number }[];
  message: string | null;
}

const PROGRESS = `subscription P($runId: ID!) {
  runProgress(runId: $runId) { runId parentRunId status epoch epochs batch batches metrics { key value step } message }
}`;

/** A server over a workspace with the fixture plugin and a small generated data set. */
describe('training and tuning jobs over GraphQL', () => {
  const { dir, remove } = tempDir('menagerie-jobs-api-');
  let ws: Workspace;
  let server: MenagerieServer;
  let client: Client;

  const gql = async <T>(query: string, variables: Record<string, unknown> = {}, token?: string) => {
    const res = await fetch(server.url, {
      method: 'POST',
      headers: {
        'content-type': 'application/json',
        ...(token ? { authorization: `Bearer ${token}` } : {}),
      },
      body: JSON.stringify({ query, variables }),
    });
    return (await res.json()) as {
      data?: T | null;
      errors?: { message: string; extensions?: { code?: string } }[];
    };
  };

  /** Every update of a run's progress until the stream ends. */
  const follow = async (runId: string): Promise<Progress[]> => {
    const updates: Progress[] = [];
    for await (const result of client.iterate<{ runProgress: Progress }>({
      query: PROGRESS,
      variables: { runId },
    })) {
      if (result.errors) throw new Error(JSON.stringify(result.errors));
      updates.push(result.data!.runProgress);
    }
    return updates;
  };

  const startTraining = (input: Record<string, unknown>) =>
    gql<{ startTraining: { id: string; status: string; experiment: { name: string } } }>(
      'mutation S($input: TrainingInput!) { startTraining(input: $input) { id status experiment { name } } }',
      { input },
      TOKENS.write,
    );

  beforeAll(async () => {
    await writeDemoDataset({ dir: path.join(dir, 'src'), perClass: 12, size: 64, seed: 'api' });
    ws = await openWorkspace({ dataDir: path.join(dir, 'data'), config: FIXTURE_CONFIG });
    await ingestImages(ws, { source: path.join(dir, 'src') });
    server = await createServer({
      workspace: ws,
      config: {
        port: 0,
        playground: false,
        logger: () => {},
        computeEmbeddings: false,
        tokens: [
          { role: 'write', token: TOKENS.write },
          { role: 'read', token: TOKENS.read },
        ],
        jobs: { maxJobs: 1, killGraceMs: 20_000 },
      },
    });
    client = createClient({
      url: server.url.replace(/^http/, 'ws'),
      webSocketImpl: WebSocket,
      lazy: false,
    });
  }, 120_000);
  afterAll(async () => {
    await client?.dispose();
    await server?.close();
    await ws?.close();
    remove();
  });

  it('startTraining runs a child process; runProgress gives its epochs until FINISHED', async () => {
    const started = await startTraining({
      plugin: 'tiny-mlp',
      epochs: 4,
      experiment: 'api',
      runName: 'from-the-api',
      seed: 7,
      hyperparameters: '{"units": 8}',
    });
    expect(started.errors).toBeUndefined();
    const run = started.data!.startTraining;
    expect(run).toMatchObject({ status: 'RUNNING', experiment: { name: 'api' } });

    const updates = await follow(run.id);
    const last = updates.at(-1)!;
    expect(last).toMatchObject({ runId: run.id, status: 'FINISHED' });
    const epochs = updates.filter((u) => u.metrics.some((m) => m.key === 'val_accuracy'));
    expect(epochs.length).toBeGreaterThan(0);
    const history = await ws.tracking.getMetricHistory(run.id, 'val_accuracy');
    // The last epoch update is the last epoch the run logged, step = epoch - 1.
    const lastEpoch = epochs.filter((u) => u.epoch !== null).at(-1)!;
    expect(lastEpoch.epoch).toBe(history.length);
    expect(lastEpoch.epochs).toBe(4);
    expect(lastEpoch.metrics.find((m) => m.key === 'val_accuracy')!.step).toBe(history.length - 1);
    expect(updates.some((u) => u.metrics.some((m) => m.key === 'batch_loss'))).toBe(true);

    const detail = await gql<{
      run: {
        status: string;
        name: string;
        params: { key: string; value: string }[];
        confusionMatrix: { labels: string[]; counts: number[][] } | null;
        confusionMatrixUrl: string | null;
      };
    }>(
      'query R($id: ID!) { run(id: $id) { status name params { key value } confusionMatrix { labels counts } confusionMatrixUrl } }',
      { id: run.id },
    );
    expect(detail.data!.run).toMatchObject({ status: 'FINISHED', name: 'from-the-api' });
    expect(detail.data!.run.params).toEqual(
      expect.arrayContaining([
        { key: 'units', value: '8' },
        { key: 'seed', value: '7' },
      ]),
    );
    expect(detail.data!.run.confusionMatrix!.labels.length).toBeGreaterThan(1);
    const png = await fetch(new URL(detail.data!.run.confusionMatrixUrl!, server.url));
    expect(png.status).toBe(200);
    expect(png.headers.get('content-type')).toBe('image/png');

    // A subscriber to an ended run gets its one final state.
    const after = await follow(run.id);
    expect(after).toHaveLength(1);
    expect(after[0]).toMatchObject({ status: 'FINISHED' });
  }, 120_000);

  it('refuses a second job past the limit; cancelRun ends the running one KILLED', async () => {
    // Held after epoch 2 until cancelled: it cannot finish before the cancel lands.
    const started = await startTraining({ plugin: 'tiny-mlp-held', epochs: 50, experiment: 'api' });
    expect(started.errors).toBeUndefined();
    const runId = started.data!.startTraining.id;
    const progress = follow(runId);

    const second = await startTraining({ plugin: 'tiny-mlp', epochs: 1 });
    expect(second.errors?.[0]?.extensions?.code).toBe('JOB_LIMIT');
    const anonymous = await gql(`mutation { cancelRun(id: "${runId}") { id } }`);
    expect(anonymous.errors?.[0]?.extensions?.code).toBe('UNAUTHENTICATED');

    // Let it train a little first.
    await waitFor(
      async () => (await ws.tracking.getMetricHistory(runId, 'loss')).length > 0,
      'its first epoch',
      60_000,
    );
    const cancelled = await gql<{ cancelRun: { id: string; status: string; endTime: string } }>(
      `mutation { cancelRun(id: "${runId}") { id status endTime } }`,
      {},
      TOKENS.write,
    );
    expect(cancelled.errors).toBeUndefined();
    expect(cancelled.data!.cancelRun).toMatchObject({ id: runId, status: 'KILLED' });
    expect((await progress).at(-1)).toMatchObject({ runId, status: 'KILLED' });
    expect(server.services.jobs.running()).toEqual([]);
    const again = await gql(`mutation { cancelRun(id: "${runId}") { id } }`, {}, TOKENS.write);
    expect(again.errors?.[0]?.extensions?.code).toBe('RUN_NOT_ACTIVE');
  }, 120_000);

  it('startTuning runs trials as child runs; subscribers to the tuning run see them', async () => {
    const started = await gql<{ startTuning: { id: string } }>(
      `mutation { startTuning(input: { plugin: "tiny-mlp", tuner: "random", maxTrials: 2, epochs: 1, experiment: "tune" }) { id } }`,
      {},
      TOKENS.write,
    );
    expect(started.errors).toBeUndefined();
    const runId = started.data!.startTuning.id;
    const updates = await follow(runId);
    expect(updates.at(-1)).toMatchObject({ runId, status: 'FINISHED' });
    const trialEnds = updates.filter(
      (u) => u.parentRunId === runId && u.message?.includes('COMPLETED'),
    );
    expect(trialEnds).toHaveLength(2);
    const children = await gql<{
      run: { children: { id: string; status: string; parentRunId: string }[] };
    }>(`query R($id: ID!) { run(id: $id) { children { id status parentRunId } } }`, { id: runId });
    expect(children.data!.run.children.map((c) => c.status)).toEqual(['FINISHED', 'FINISHED']);
    expect(new Set(trialEnds.map((u) => u.runId))).toEqual(
      new Set(children.data!.run.children.map((c) => c.id)),
    );
  }, 120_000);

  it('a child that fails before its run exists fails the mutation with its code', async () => {
    const deleted = await ws.tracking.createExperiment('deleted');
    await ws.tracking.deleteExperiment(deleted.id);
    const res = await startTraining({ plugin: 'tiny-mlp', epochs: 1, experiment: 'deleted' });
    expect(res.errors?.[0]?.extensions?.code).toBe('EXPERIMENT_NOT_ACTIVE');
    expect(server.services.jobs.running()).toEqual([]);
  }, 60_000);

  it('closing the server stops its jobs; their runs end KILLED', async () => {
    const started = await startTraining({ plugin: 'tiny-mlp-held', epochs: 50, experiment: 'api' });
    const runId = started.data!.startTraining.id;
    await waitFor(
      async () => (await ws.tracking.getMetricHistory(runId, 'loss')).length > 0,
      'its first epoch',
      60_000,
    );
    await client.dispose();
    await server.close();
    expect((await ws.tracking.getRun(runId)).status).toBe('KILLED');
  }, 120_000);
});
