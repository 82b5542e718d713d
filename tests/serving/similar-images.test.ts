import fs from 'node:fs';
import path from 'node:path';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ingestImages } from '../../data/ingest/ingest.js';
import { createModelRegistry, type ModelRegistry } from '../../registry/model-registry.js';
import {
  failStaleEmbeddingJobs,
  getEmbeddingJob,
  modelVersionId,
  startEmbeddingJob,
} from '../../serving/embedding-job.js';
import { vectorIndex } from '../../serving/vector-index.js';
import { modelVersionSpace } from '../../serving/vector-space.js';
import { createInferenceEngine, type InferenceEngine } from '../../serving/inference-engine.js';
import { followChampion } from '../../serving/registry-champion.js';
import { similarImages } from '../../serving/similar-images.js';
import { startCli } from '../helpers/cli.js';
import { makeImage, writeFile } from '../helpers/fixtures.js';
import { tempWorkspace } from '../helpers/workspace.js';
import { LOADERS, registerTinyVersion } from './serving-fixtures.js';
import { forEachDatabase } from '../helpers/backends.js';

forEachDatabase((backend) => {
  const NAME = 'faces';
  const V1 = { name: NAME, version: 1 };
  const V2 = { name: NAME, version: 2 };

  let workspace: Awaited<ReturnType<typeof tempWorkspace>>;
  let registry: ModelRegistry;
  let engine: InferenceEngine;
  /** Image id by file name (cat-0 … cat-11, cat-0-copy, dog-0 … dog-11). */
  const ids = new Map<string, number>();
  let cat0: Buffer;

  beforeAll(async () => {
    workspace = await tempWorkspace({ database: backend });
    // The embedding children reopen the workspace from the environment, as the CLI's are.
    const url = await backend.location();
    if (url) process.env.MENAGERIE_DATABASE_URL = url;
    const source = path.join(workspace.dataDir, 'source');
    for (let i = 0; i < 12; i++) {
      writeFile(path.join(source, `cat/cat-${i}.jpg`), await makeImage(10 + i));
      writeFile(path.join(source, `dog/dog-${i}.jpg`), await makeImage(40 + i));
    }
    cat0 = fs.readFileSync(path.join(source, 'cat/cat-0.jpg'));
    // A near-duplicate: cat-0 with one pixel changed, saved losslessly.
    const { data, info } = await sharp(cat0).raw().toBuffer({ resolveWithObject: true });
    data[0] = data[0]! ^ 0xff;
    writeFile(
      path.join(source, 'cat/cat-0-copy.png'),
      await sharp(data, { raw: { width: info.width, height: info.height, channels: 3 } })
        .png()
        .toBuffer(),
    );
    const report = await ingestImages(
      { database: workspace.database, blobs: workspace.blobs },
      { source },
    );
    expect(report.added).toBe(25);
    const rows = await workspace.database.db
      .selectFrom('images')
      .select(['id', 'source_path'])
      .execute();
    for (const r of rows) ids.set(path.basename(r.source_path!).replace(/\.\w+$/, ''), r.id);

    registry = createModelRegistry({ db: workspace.database.db, user: 'tester' });
    await registerTinyVersion(registry, workspace.dataDir, NAME, 7);
    await registerTinyVersion(registry, workspace.dataDir, NAME, 8);
    await registry.promoteChampion(NAME, 1);
    engine = await createInferenceEngine(followChampion(registry, LOADERS, NAME));
  });

  afterAll(async () => {
    process.env.MENAGERIE_DATABASE_URL = '';
    await engine.close();
    await workspace.dispose();
  });

  describe('similar images', () => {
    it('falls back to random images of the label before embeddings exist, and says so', async () => {
      const result = await similarImages(workspace.database, {
        version: V1,
        imageId: ids.get('cat-3')!,
        k: 5,
      });
      expect(result.method).toBe('random');
      expect(result.reason).toMatch(/never computed/);
      expect(result.images).toHaveLength(5);
      for (const image of result.images) {
        expect(image.label).toBe('cat');
        expect(image.distance).toBeNull();
        expect(image.imageId).not.toBe(ids.get('cat-3'));
      }
    });

    it('computes embeddings in a child process into the vector index and marks them READY', async () => {
      const started = await startEmbeddingJob(
        { database: workspace.database, dataDir: workspace.dataDir },
        V1,
        { batchSize: 8 },
      );
      expect(started).not.toBeNull();
      expect(started!.child.pid).not.toBe(process.pid);
      const job = await started!.finished;
      expect(job).toMatchObject({
        status: 'READY',
        done: 25,
        total: 25,
        dimension: 24,
        error: null,
      });
      const id = await modelVersionId(workspace.database.db, V1);
      expect(await vectorIndex(workspace.database).count(modelVersionSpace(id))).toBe(25);
      // Already READY: nothing to start.
      expect(
        await startEmbeddingJob({ database: workspace.database, dataDir: workspace.dataDir }, V1),
      ).toBeNull();
    });

    it('returns only same-label images, nearest first, the near-duplicate before all', async () => {
      const byId = await similarImages(workspace.database, {
        version: V1,
        imageId: ids.get('cat-0')!,
        k: 10,
      });
      expect(byId.method).toBe('embedding');
      expect(byId.images).toHaveLength(10);
      expect(byId.images[0]!.imageId).toBe(ids.get('cat-0-copy'));
      expect(byId.images[0]!.distance!).toBeLessThan(0.05);
      expect(byId.images.map((i) => i.imageId)).not.toContain(ids.get('cat-0'));
      expect(new Set(byId.images.map((i) => i.label))).toEqual(new Set(['cat']));
      const distances = byId.images.map((i) => i.distance!);
      expect(distances).toEqual([...distances].sort((a, b) => a - b));
      expect(distances[1]!).toBeGreaterThan(distances[0]! * 3);

      // An upload: its embedding from the serving model, searched within the predicted label.
      const p = await engine.predict(cat0, { embedding: true });
      const byUpload = await similarImages(workspace.database, {
        version: p.modelVersion,
        embedding: p.embedding!,
        label: 'cat',
        k: 3,
      });
      expect(byUpload.images.slice(0, 2).map((i) => i.imageId)).toEqual([
        ids.get('cat-0'),
        ids.get('cat-0-copy'),
      ]);
      expect(byUpload.images[0]!.distance!).toBeLessThan(1e-4);

      const anyLabel = await similarImages(workspace.database, {
        version: V1,
        imageId: ids.get('cat-0')!,
        k: 24,
        sameLabel: false,
      });
      expect(anyLabel.images).toHaveLength(24);
      expect(new Set(anyLabel.images.map((i) => i.label))).toEqual(new Set(['cat', 'dog']));
    });

    it('rejects a query without an image or embedding, a bad k, a wrong-length embedding', async () => {
      const query = (q: Partial<Parameters<typeof similarImages>[1]>) =>
        similarImages(workspace.database, { version: V1, label: 'cat', ...q }).catch(
          (e: unknown) => e,
        );
      expect(await query({})).toMatchObject({ code: 'SIMILAR_QUERY_INVALID' });
      expect(await query({ imageId: ids.get('cat-1')!, k: 0 })).toMatchObject({
        code: 'SIMILAR_QUERY_INVALID',
      });
      expect(await query({ embedding: new Float32Array(5) })).toMatchObject({
        code: 'SIMILAR_QUERY_INVALID',
      });
      expect(await query({ imageId: 999_999 })).toMatchObject({ code: 'IMAGE_NOT_FOUND' });
    });

    it('marks a killed job FAILED at the next start, and the rerun resumes to READY', async () => {
      const child = startCli([
        '--data-dir',
        workspace.dataDir,
        'embed',
        '--model',
        NAME,
        '--version',
        '2',
        '--batch-size',
        '2',
        '--pause-ms',
        '300',
      ]);
      const exited = new Promise((resolve) => child.on('exit', resolve));
      const deadline = Date.now() + 60_000;
      let job = await getEmbeddingJob(workspace.database.db, V2);
      while (!(job?.status === 'RUNNING' && job.done >= 2) && Date.now() < deadline) {
        await new Promise((r) => setTimeout(r, 50));
        job = await getEmbeddingJob(workspace.database.db, V2);
      }
      expect(job).toMatchObject({ status: 'RUNNING', pid: child.pid });
      child.kill('SIGKILL');
      await exited;

      const running = await similarImages(workspace.database, {
        version: V2,
        imageId: ids.get('cat-0')!,
      });
      expect(running.method).toBe('random');
      expect(await failStaleEmbeddingJobs(workspace.database.db)).toEqual([
        await modelVersionId(workspace.database.db, V2),
      ]);
      const failed = await getEmbeddingJob(workspace.database.db, V2);
      expect(failed).toMatchObject({ status: 'FAILED' });
      expect(failed!.error).toMatch(/exited before the job finished/);
      const embeddedBefore = failed!.done;
      expect(embeddedBefore).toBeGreaterThanOrEqual(2);
      expect(embeddedBefore).toBeLessThan(25);

      const rerun = await startEmbeddingJob(
        { database: workspace.database, dataDir: workspace.dataDir },
        V2,
        { batchSize: 8 },
      );
      const done = await rerun!.finished;
      expect(done).toMatchObject({ status: 'READY', done: 25, total: 25, error: null });
      const space = modelVersionSpace(await modelVersionId(workspace.database.db, V2));
      expect(await vectorIndex(workspace.database).count(space)).toBe(25);
      const result = await similarImages(workspace.database, {
        version: V2,
        imageId: ids.get('cat-0')!,
      });
      expect(result.method).toBe('embedding');
      expect(result.images[0]!.imageId).toBe(ids.get('cat-0-copy'));
    });
  });
});
