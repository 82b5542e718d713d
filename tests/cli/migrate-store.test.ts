import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openWorkspace, type Workspace } from '../../cli/workspace.js';
import { ingestImages } from '../../data/ingest/ingest.js';
import { createModelRegistry } from '../../registry/model-registry.js';
import { registerModelArtifact } from '../../registry/register-model.js';
import { loadServedModel } from '../../serving/served-model.js';
import { vectorIndex } from '../../serving/vector-index.js';
import { modelVersionSpace } from '../../serving/vector-space.js';
import {
  databaseBackend,
  DATABASE_BACKENDS,
  SERVICE_START_TIMEOUT,
  storeBackend,
  STORE_BACKENDS,
} from '../helpers/backends.js';
import { runCli } from '../helpers/cli.js';
import { makeImage, tempDir, writeFile } from '../helpers/fixtures.js';
import { PLUGINS, saveTinyModel } from '../serving/serving-fixtures.js';

describe.runIf(DATABASE_BACKENDS.includes('postgres') && STORE_BACKENDS.includes('s3'))(
  'migrate-store',
  () => {
    const { dir, remove } = tempDir('menagerie-migrate-');
    const postgres = databaseBackend('postgres');
    const s3 = storeBackend('s3');
    const local = path.join(dir, 'local');
    const back = path.join(dir, 'back');
    let pgUrl: string;
    let s3Url: string;
    let runId: string;
    afterAll(remove);

    beforeAll(async () => {
      pgUrl = (await postgres.location({ fresh: true }))!;
      s3Url = (await s3.url())!;
      // A workspace with every kind of thing: images and their blobs, a run with metrics and
      // artifacts, a model version saved in the run's folder, and its embeddings.
      const ws = await openWorkspace({ dataDir: local });
      for (let i = 0; i < 6; i++)
        writeFile(path.join(dir, 'src', i % 2 ? 'cat' : 'dog', `${i}.jpg`), await makeImage(i));
      await ingestImages(ws, { source: path.join(dir, 'src') });
      const experiment = await ws.tracking.getOrCreateExperiment('faces');
      const run = await ws.tracking.createRun({ experimentId: experiment.id, tags: { a: 'b' } });
      runId = run.id;
      await ws.tracking.logMetrics(run.id, { val_accuracy: 0.9 }, { step: 1 });
      const model = await saveTinyModel(
        path.join(await ws.tracking.artifactPath(run.id), 'model'),
        {
          seed: 3,
        },
      );
      await ws.tracking.endRun(run.id, 'FINISHED');
      const registry = createModelRegistry({ db: ws.database.db, user: 'tester' });
      await registerModelArtifact(registry, PLUGINS, { name: 'faces', dir: model, runId: run.id });
      const index = vectorIndex(ws.database);
      await index.ensure(modelVersionSpace(1), 3);
      const images = await ws.database.db.selectFrom('images').select('id').execute();
      await index.upsert(
        modelVersionSpace(1),
        images.map((im) => ({ id: im.id, label: 'cat', vector: new Float32Array([im.id, 1, 0]) })),
      );
      await ws.close();
    }, SERVICE_START_TIMEOUT);

    const expectComplete = async (ws: Workspace) => {
      expect(await ws.database.db.selectFrom('images').select('id').execute()).toHaveLength(6);
      const run = await ws.tracking.getRun(runId);
      expect(run.metrics).toEqual({ val_accuracy: 0.9 });
      expect(run.tags).toEqual({ a: 'b' });
      const version = await createModelRegistry({ db: ws.database.db }).getModelVersion('faces', 1);
      expect(version.source.startsWith(`${run.artifactUri}/model`)).toBe(true);
      // The version loads from the workspace's own store.
      const served = await loadServedModel(version, ws);
      expect(served.embeddingSize).toBe(24);
      served.dispose();
      const index = vectorIndex(ws.database);
      expect(await index.count(modelVersionSpace(1))).toBe(6);
      const images = await ws.database.db.selectFrom('images').select(['uri', 'sha256']).execute();
      for (const image of images) expect((await ws.blobs.get(image.uri)).length).toBeGreaterThan(0);
    };

    it('doctor reports PostgreSQL and pgvector with their versions, and the S3 store', () => {
      const result = runCli([
        '--data-dir',
        path.join(dir, 'doctor'),
        '--database',
        pgUrl,
        '--store',
        s3Url,
        'doctor',
      ]);
      expect(result.code, result.stdout + result.stderr).toBe(0);
      expect(result.stdout).toMatch(
        /ok\s+database\s+PostgreSQL 15\.\d+, pgvector 0\.8\.\d+: postgres:\/\/.*schema \d{4}-/,
      );
      expect(result.stdout).toMatch(
        /ok\s+blob store\s+s3:\/\/menagerie\/.*\(write, read, delete ok\)/,
      );
    });

    it('copies SQLite + local to PostgreSQL + S3, resumes as a no-op, and back, verified', async () => {
      const to = runCli([
        '--data-dir',
        local,
        'migrate-store',
        '--to-database',
        pgUrl,
        '--to-store',
        s3Url,
      ]);
      expect(to.code, to.stderr).toBe(0);
      expect(to.stdout).toMatch(
        /verified +\d+ rows, 6 blobs, \d+ artifact files \(sha256\), 1 vector spaces/,
      );
      // Run again: everything is there already, and verified again.
      const again = runCli([
        '--data-dir',
        local,
        'migrate-store',
        '--to-database',
        pgUrl,
        '--to-store',
        s3Url,
      ]);
      expect(again.code, again.stderr).toBe(0);

      // A fresh replica on another data folder, with only the URLs.
      const remote = await openWorkspace({
        dataDir: path.join(dir, 'replica'),
        database: pgUrl,
        store: s3Url,
      });
      expect((await remote.tracking.getRun(runId)).artifactUri).toMatch(/^s3:\/\//);
      await expectComplete(remote);
      const created = await remote.database.db
        .insertInto('labels')
        .values({ name: 'new', created_at: Date.now() })
        .returning('id')
        .executeTakeFirstOrThrow();
      expect(created.id).toBeGreaterThan(2); // identities continue past the copied ids
      await remote.database.db.deleteFrom('labels').where('id', '=', created.id).execute();
      await remote.close();

      const home = runCli([
        '--data-dir',
        back,
        '--database',
        pgUrl,
        '--store',
        s3Url,
        'migrate-store',
        '--to-database',
        path.join(back, 'menagerie.db'),
        '--to-store',
        'local',
      ]);
      expect(home.code, home.stderr).toBe(0);
      const returned = await openWorkspace({ dataDir: back, database: '', store: null });
      expect(returned.database.backend).toBe('sqlite');
      expect((await returned.tracking.getRun(runId)).artifactUri).toMatch(/^file:\/\//);
      await expectComplete(returned);
      await returned.close();
    }, 300_000);
  },
);
