import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openWorkspace, type Workspace } from '../../cli/workspace.js';
import { jobContext } from '../../cli/commands/train.js';
import { writeDemoDataset } from '../../demo/demo-dataset.js';
import { ingestImages } from '../../data/ingest/ingest.js';
import { runTrackedTraining } from '../../jobs/tracked-training.js';
import { createModelRegistry } from '../../registry/model-registry.js';
import { registerRunModel } from '../../registry/register-model.js';
import { createInferenceEngine } from '../../serving/inference-engine.js';
import { followChampion } from '../../serving/registry-champion.js';
import { readRunEvaluation } from '../../tracking/run-evaluation.js';
import {
  databaseBackend,
  DATABASE_BACKENDS,
  SERVICE_START_TIMEOUT,
  storeBackend,
  STORE_BACKENDS,
} from '../helpers/backends.js';
import { tempDir } from '../helpers/fixtures.js';

const FIXTURE_CONFIG = path.resolve(
  import.meta.dirname,
  '../fixtures/plugins/menagerie.config.json',
);

// Two replicas that share only PostgreSQL and S3: what one trains, the other registers,
// serves and shows, with nothing copied between their data folders.
describe.runIf(DATABASE_BACKENDS.includes('postgres') && STORE_BACKENDS.includes('s3'))(
  'training on PostgreSQL + S3',
  () => {
    const { dir, remove } = tempDir('menagerie-scaled-');
    const postgres = databaseBackend('postgres');
    const s3 = storeBackend('s3');
    let trainer: Workspace;
    let server: Workspace;
    beforeAll(async () => {
      const database = await postgres.location({ fresh: true });
      const store = await s3.url();
      const open = (name: string) =>
        openWorkspace({
          dataDir: path.join(dir, name),
          config: FIXTURE_CONFIG,
          ...(database && { database }),
          ...(store && { store }),
        });
      trainer = await open('trainer');
      server = await open('server');
      await writeDemoDataset({ dir: path.join(dir, 'src'), perClass: 8, size: 64, seed: 's3' });
      await ingestImages(trainer, { source: path.join(dir, 'src') });
    }, SERVICE_START_TIMEOUT);
    afterAll(async () => {
      await Promise.all([trainer?.close(), server?.close()]);
      remove();
    });

    it('uploads a run’s model and evaluation, and another replica registers and serves it', async () => {
      const { runId } = await runTrackedTraining(jobContext(trainer), {
        plugin: 'tiny-mlp',
        epochs: 2,
        seed: 5,
        batchSize: 8,
        augment: false,
        earlyStopping: false,
        reduceLrOnPlateau: false,
      });
      const run = await server.tracking.getRun(runId);
      expect(run.status).toBe('FINISHED');
      expect(run.artifactUri).toMatch(
        /^s3:\/\/menagerie\/.*\/artifacts\/\d+\/[0-9a-f]{32}\/artifacts$/,
      );
      // The evaluation and its plot are read from the store, not from the trainer's disk.
      const listed = (await server.tracking.listArtifacts(runId, 'model')).map((e) => e.path);
      expect(listed).toEqual(
        expect.arrayContaining([
          'model/model.json',
          'model/menagerie.json',
          'model/confusion_matrix.png',
        ]),
      );
      const evaluation = await readRunEvaluation((file) =>
        server.tracking.readArtifact(runId, file),
      );
      expect(evaluation?.labels).toEqual(['cat', 'dog', 'wild']);

      const registry = createModelRegistry({ db: server.database.db });
      const version = await registerRunModel(registry, server.tracking, server.plugins, {
        name: 'scaled',
        runId,
      });
      expect(version.source).toBe(`${run.artifactUri}/model`);
      await registry.promoteChampion('scaled', version.version);
      const engine = await createInferenceEngine(followChampion(registry, server, 'scaled'));
      try {
        const image = await server.database.db
          .selectFrom('images')
          .select('uri')
          .executeTakeFirstOrThrow();
        const prediction = await engine.predict(await server.blobs.get(image.uri));
        expect(prediction.modelVersion).toEqual({ name: 'scaled', version: 1 });
      } finally {
        await engine.close();
      }
    }, 300_000);
  },
);
