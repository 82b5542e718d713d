import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { MODEL_ARTIFACT_PATH } from '../../tracking/run-evaluation.js';
import { getEmbeddingJob } from '../../serving/embedding-job.js';
import { makeImage } from '../helpers/fixtures.js';
import { saveTinyModel } from '../helpers/models.js';
import { startTestServer, TOKENS, type TestServer } from '../helpers/server.js';
import { addImages, PREDICT, registerTinyModel, type PredictData } from '../helpers/serving.js';

const codeOf = (res: { errors?: { extensions?: { code?: string } }[] }) =>
  res.errors?.[0]?.extensions?.code;

const MUTATIONS: Record<string, string> = {
  registerModel:
    'mutation { registerModel(runId: "0123456789abcdef0123456789abcdef", name: "pets") { version } }',
  transitionStage:
    'mutation { transitionStage(name: "pets", version: 1, stage: STAGING) { version } }',
  setAlias: 'mutation { setAlias(name: "pets", alias: "challenger", version: 1) { version } }',
  deleteAlias: 'mutation { deleteAlias(name: "pets", alias: "challenger") }',
  promoteChampion: 'mutation { promoteChampion(name: "pets", version: 1) { version } }',
};

describe('registry over GraphQL', () => {
  const w = { token: TOKENS.write };
  let t: TestServer;

  // Each test gets its own server: model 'pets' with three READY versions, nothing staged.
  beforeEach(async () => {
    t = await startTestServer({ computeEmbeddings: false, servingModel: 'pets' });
    await addImages(t, ['cat', 'dog'], 2);
    for (const seed of [1, 2, 3])
      await registerTinyModel(t, 'pets', { labels: ['cat', 'dog'], seed });
  });
  afterEach(() => t.dispose());

  /** A change a test starts from, through the API as user api:write; it must succeed. */
  async function change(mutation: string): Promise<void> {
    const res = await t.gql(mutation, {}, w);
    if (res.errors) throw new Error(`setup failed: ${mutation}: ${JSON.stringify(res.errors)}`);
  }

  /** v1 Staging, v3 Archived, v2 the champion in Production; challenger set, then deleted. */
  async function stageAliasAndPromote(): Promise<void> {
    await change(
      'mutation { transitionStage(name: "pets", version: 1, stage: STAGING, comment: "try it") { version } }',
    );
    await change(
      'mutation { transitionStage(name: "pets", version: 3, stage: ARCHIVED) { stage } }',
    );
    await change(
      'mutation { setAlias(name: "pets", alias: "challenger", version: 2) { version } }',
    );
    await change(
      'mutation { promoteChampion(name: "pets", version: 2, comment: "beats v1") { version } }',
    );
    await change('mutation { deleteAlias(name: "pets", alias: "challenger") }');
  }

  it('every registry mutation needs a write token', async () => {
    for (const [name, mutation] of Object.entries(MUTATIONS)) {
      expect(codeOf(await t.gql(mutation)), name).toBe('UNAUTHENTICATED');
      expect(codeOf(await t.gql(mutation, {}, { token: TOKENS.read })), name).toBe('FORBIDDEN');
    }
    const history = await t.gql<{ registeredModel: { transitions: { action: string }[] } }>(
      '{ registeredModel(name: "pets") { transitions { action } } }',
    );
    expect(history.data?.registeredModel.transitions.every((r) => r.action === 'CREATE')).toBe(
      true,
    );
  });

  it('transitionStage moves a version to a stage', async () => {
    const staged = await t.gql(
      'mutation { transitionStage(name: "pets", version: 1, stage: STAGING, comment: "try it") { version stage } }',
      {},
      w,
    );
    expect(staged.data).toEqual({ transitionStage: { version: 1, stage: 'STAGING' } });
  });

  it('transitionStage ignores archiveExisting for None and Archived', async () => {
    // archiveExisting defaults to true, which MLflow ignores for None/Archived: so do we.
    const archived = await t.gql(
      'mutation { transitionStage(name: "pets", version: 3, stage: ARCHIVED) { stage } }',
      {},
      w,
    );
    expect(archived.data).toEqual({ transitionStage: { stage: 'ARCHIVED' } });
  });

  it('setAlias points an alias at a version', async () => {
    const aliased = await t.gql(
      'mutation { setAlias(name: "pets", alias: "challenger", version: 2) { version aliases } }',
      {},
      w,
    );
    expect(aliased.data).toEqual({ setAlias: { version: 2, aliases: ['challenger'] } });
  });

  it('setAlias refuses champion, which only promoteChampion moves', async () => {
    expect(
      codeOf(
        await t.gql(
          'mutation { setAlias(name: "pets", alias: "champion", version: 2) { version } }',
          {},
          w,
        ),
      ),
    ).toBe('MODEL_ALIAS_INVALID');
  });

  it('promoteChampion puts the version in Production as champion, keeping its other aliases', async () => {
    await change(
      'mutation { setAlias(name: "pets", alias: "challenger", version: 2) { version } }',
    );
    const promoted = await t.gql(
      'mutation { promoteChampion(name: "pets", version: 2, comment: "beats v1") { version stage aliases } }',
      {},
      w,
    );
    expect(promoted.data).toEqual({
      promoteChampion: { version: 2, stage: 'PRODUCTION', aliases: ['challenger', 'champion'] },
    });
  });

  it('deleteAlias removes an alias', async () => {
    await change(
      'mutation { setAlias(name: "pets", alias: "challenger", version: 2) { version } }',
    );
    expect(
      (await t.gql('mutation { deleteAlias(name: "pets", alias: "challenger") }', {}, w)).data,
    ).toEqual({
      deleteAlias: true,
    });
  });

  it('registeredModel shows aliases, the champion and the latest version per stage', async () => {
    await stageAliasAndPromote();
    const res = await t.gql<{
      registeredModel: {
        aliases: { alias: string; version: number }[];
        champion: { version: number };
        latestVersions: { version: number; stage: string }[];
      };
    }>(`{ registeredModel(name: "pets") {
      aliases { alias version } champion { version }
      latestVersions { version stage }
    } }`);
    expect(res.errors).toBeUndefined();
    const model = res.data!.registeredModel;
    expect(model.aliases).toEqual([{ alias: 'champion', version: 2 }]);
    expect(model.champion.version).toBe(2);
    expect(model.latestVersions).toEqual([
      { version: 3, stage: 'ARCHIVED' },
      { version: 2, stage: 'PRODUCTION' },
      { version: 1, stage: 'STAGING' },
    ]);
  });

  it('registeredModel pages its versions newest first', async () => {
    const res = await t.gql<{
      registeredModel: {
        versions: {
          totalCount: number;
          edges: { node: { version: number } }[];
          pageInfo: { hasNextPage: boolean; endCursor: string };
        };
      };
    }>(`{ registeredModel(name: "pets") {
      versions(first: 2) { totalCount edges { node { version } } pageInfo { hasNextPage endCursor } }
    } }`);
    expect(res.errors).toBeUndefined();
    const model = res.data!.registeredModel;
    expect(model.versions.totalCount).toBe(3);
    expect(model.versions.edges.map((e) => e.node.version)).toEqual([3, 2]);
    expect(model.versions.pageInfo.hasNextPage).toBe(true);
    const next = await t.gql<{
      registeredModel: { versions: { edges: { node: { version: number } }[] } };
    }>(
      'query($after: String) { registeredModel(name: "pets") { versions(first: 2, after: $after) { edges { node { version } } } } }',
      { after: model.versions.pageInfo.endCursor },
    );
    expect(next.data?.registeredModel.versions.edges.map((e) => e.node.version)).toEqual([1]);
  });

  it('the history of a model and of a version lists every change, who made it and why', async () => {
    await stageAliasAndPromote();
    const res = await t.gql<{
      registeredModel: {
        transitions: {
          version: number;
          action: string;
          fromStage: string | null;
          toStage: string | null;
          alias: string | null;
          user: string;
          comment: string | null;
          at: string;
        }[];
      };
    }>(`{ registeredModel(name: "pets") {
      transitions { version action fromStage toStage alias user comment at }
    } }`);
    expect(res.errors).toBeUndefined();
    const model = res.data!.registeredModel;
    const changes = model.transitions.filter((r) => r.action !== 'CREATE');
    const summary = changes.map((r) =>
      r.action === 'STAGE'
        ? [r.version, r.action, r.fromStage, r.toStage]
        : [r.version, r.action, r.alias],
    );
    expect(summary).toEqual([
      [1, 'STAGE', 'NONE', 'STAGING'],
      [3, 'STAGE', 'NONE', 'ARCHIVED'],
      [2, 'ALIAS_SET', 'challenger'],
      [2, 'ALIAS_SET', 'champion'],
      [2, 'STAGE', 'NONE', 'PRODUCTION'],
      [2, 'ALIAS_DELETE', 'challenger'],
    ]);
    expect(changes[0]).toMatchObject({ user: 'api:write', comment: 'try it' });
    const promotion = changes.filter((r) => r.comment === 'beats v1');
    expect(promotion.length).toBeGreaterThanOrEqual(2);

    const version = await t.gql<{ modelVersion: { transitions: { action: string }[] } }>(
      '{ modelVersion(name: "pets", version: 2) { transitions { action } } }',
    );
    expect(version.data?.modelVersion.transitions.map((r) => r.action)).toEqual([
      'CREATE',
      'ALIAS_SET',
      'ALIAS_SET',
      'STAGE',
      'ALIAS_DELETE',
    ]);
  });

  it('a missing version or model is null', async () => {
    expect(
      (
        await t.gql(
          '{ modelVersion(name: "pets", version: 9) { version } registeredModel(name: "nope") { name } }',
        )
      ).data,
    ).toEqual({ modelVersion: null, registeredModel: null });
  });

  it('the promoted version is the one that answers predictions', async () => {
    await change('mutation { promoteChampion(name: "pets", version: 2) { version } }');
    const p = await t.upload<PredictData>(PREDICT, { file: null }, [
      { path: 'variables.file', file: { bytes: await makeImage(5) } },
    ]);
    expect(p.data?.predict.modelVersion).toEqual({ name: 'pets', version: 2 });
  });

  it('registeredModels lists every model with its versions', async () => {
    const res = await t.gql<{
      registeredModels: { name: string; versions: { totalCount: number } }[];
    }>('{ registeredModels { name versions { totalCount } } }');
    expect(res.data?.registeredModels).toEqual([{ name: 'pets', versions: { totalCount: 3 } }]);
  });
});

describe('registerModel', () => {
  it("registers a finished run's model and computes its embeddings in a child process", async () => {
    const e = await startTestServer({ servingModel: 'pets' });
    try {
      await addImages(e, ['cat', 'dog'], 2);
      const { tracking } = e.workspace;
      const experiment = await tracking.getOrCreateExperiment('api');
      const run = await tracking.createRun({ experimentId: experiment.id });
      await saveTinyModel(path.join(await tracking.artifactPath(run.id), MODEL_ARTIFACT_PATH), {
        labels: ['cat', 'dog'],
      });
      await tracking.setTag(run.id, 'menagerie.model_artifact', MODEL_ARTIFACT_PATH);
      await tracking.endRun(run.id, 'FINISHED');

      const res = await e.gql<{
        registerModel: {
          name: string;
          version: number;
          status: string;
          runId: string;
          labels: string[];
          inputSize: number;
          embeddingStatus: string;
        };
      }>(
        'mutation($run: ID!) { registerModel(runId: $run, name: "pets") { name version status runId labels inputSize embeddingStatus } }',
        { run: run.id },
        { token: TOKENS.admin },
      );
      expect(res.errors).toBeUndefined();
      expect(res.data?.registerModel).toMatchObject({
        name: 'pets',
        version: 1,
        status: 'READY',
        runId: run.id,
        labels: ['cat', 'dog'],
        inputSize: 16,
      });
      expect(['PENDING', 'RUNNING', 'READY']).toContain(res.data?.registerModel.embeddingStatus);
      const deadline = Date.now() + 60_000;
      let job = await getEmbeddingJob(e.workspace.database.db, { name: 'pets', version: 1 });
      while (job?.status !== 'READY' && job?.status !== 'FAILED' && Date.now() < deadline) {
        await new Promise((r) => setTimeout(r, 200));
        job = await getEmbeddingJob(e.workspace.database.db, { name: 'pets', version: 1 });
      }
      expect(job).toMatchObject({ status: 'READY', done: 4, total: 4 });
    } finally {
      await e.dispose();
    }
  }, 90_000);

  it('refuses a run that does not exist', async () => {
    const e = await startTestServer({ computeEmbeddings: false });
    try {
      expect(
        codeOf(
          await e.gql(
            'mutation { registerModel(runId: "0123456789abcdef0123456789abcdef", name: "pets") { version } }',
            {},
            { token: TOKENS.admin },
          ),
        ),
      ).toBe('RUN_NOT_FOUND');
    } finally {
      await e.dispose();
    }
  });
});

describe('readiness follows the champion: a champion that does not load', () => {
  let e: TestServer;

  beforeEach(async () => {
    e = await startTestServer({ computeEmbeddings: false, servingModel: 'broken' });
    const v = await registerTinyModel(e, 'broken', { labels: ['cat', 'dog'] });
    fs.rmSync(fileURLToPath(v.source), { recursive: true });
    const promoted = await e.gql(
      'mutation { promoteChampion(name: "broken", version: 1) { version } }',
      {},
      { token: TOKENS.write },
    );
    expect(promoted.errors).toBeUndefined();
  });
  afterEach(() => e.dispose());

  it('/readyz is 503, naming it', async () => {
    const ready = await e.get('/readyz');
    expect(ready.status).toBe(503);
    const body = (await ready.json()) as {
      checks: { name: string; ok: boolean; error?: string }[];
    };
    expect(body.checks.find((c) => c.name === 'model')).toMatchObject({
      ok: false,
      error: expect.stringMatching(/broken version 1 is not loaded/),
    });
  });

  it('predict fails with MODEL_NOT_SERVING', async () => {
    const p = await e.upload(PREDICT, { file: null }, [
      { path: 'variables.file', file: { bytes: await makeImage(9) } },
    ]);
    expect(codeOf(p)).toBe('MODEL_NOT_SERVING');
    expect(p.errors?.[0]?.message).toMatch(/loading the champion failed/);
  });

  it('/healthz stays fine', async () => {
    expect((await e.get('/healthz')).status).toBe(200);
  });
});
