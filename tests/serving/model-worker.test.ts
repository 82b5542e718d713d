import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { jobContext } from '../../cli/commands/train.js';
import type { Workspace } from '../../cli/workspace.js';
import { isMenagerieError } from '../../core/errors.js';
import { openDatabase, type OpenDatabase } from '../../data/database.js';
import { ingestImages } from '../../data/ingest/ingest.js';
import { decodeToPixels } from '../../data/preprocess.js';
import { writeDemoDataset } from '../../demo/demo-dataset.js';
import { runTrackedTraining } from '../../jobs/tracked-training.js';
import { createModelRegistry, type ModelRegistry } from '../../registry/model-registry.js';
import { registerRunModel } from '../../registry/register-model.js';
import { createInferenceEngine, type InferenceEngine } from '../../serving/inference-engine.js';
import { createModelWorker, type ModelWorker } from '../../serving/model-worker.js';
import { followChampion } from '../../serving/registry-champion.js';
import { loadServedModel } from '../../serving/served-model.js';
import { tempDir } from '../helpers/fixtures.js';
import { saveMiniMobilenet } from '../helpers/mini-mobilenet.js';
import { waitFor } from '../helpers/wait-for.js';
import { tempWorkspace } from '../helpers/workspace.js';
import { LOADERS, registerTinyVersion, testImages } from './serving-fixtures.js';

const NAME = 'faces';

describe('inference thread', () => {
  const root = tempDir('menagerie-model-worker-');
  let database: OpenDatabase;
  let registry: ModelRegistry;
  let worker: ModelWorker;
  let images: Buffer[];

  beforeAll(async () => {
    database = await openDatabase(path.join(root.dir, 'menagerie.db'));
    registry = createModelRegistry({ db: database.db, user: 'tester' });
    for (const seed of [1, 2]) await registerTinyVersion(registry, root.dir, NAME, seed);
    await registry.promoteChampion(NAME, 1);
    images = await testImages(12);
    worker = createModelWorker({ cacheDir: path.join(root.dir, 'cache') });
  });

  afterAll(async () => {
    await worker.close();
    await database.close();
    root.remove();
  });

  /** An engine on the registry's champion, its versions loaded on `worker`'s thread. */
  function threadEngine(): Promise<InferenceEngine> {
    const { resolveChampion } = followChampion(registry, LOADERS, NAME);
    return createInferenceEngine({
      resolveChampion,
      loadVersion: async (ref) =>
        worker.load(await registry.getModelVersion(ref.name, ref.version)),
    });
  }

  it('answers as the main thread does, with the same checks on load', async () => {
    const version = await registry.getModelVersion(NAME, 2);
    const main = await loadServedModel(version, LOADERS);
    const threaded = await worker.load(version);
    try {
      expect(threaded.embeddingSize).toBe(main.embeddingSize);
      const pixels = await Promise.all(images.map((b) => decodeToPixels(b, main.inputSpec)));
      const here = main.forward(pixels);
      const there = await threaded.forward(pixels);
      expect(there.probabilities.map((p) => Array.from(p))).toEqual(
        here.probabilities.map((p) => Array.from(p)),
      );
      expect(there.embeddings.map((e) => Array.from(e))).toEqual(
        here.embeddings.map((e) => Array.from(e)),
      );
    } finally {
      main.dispose();
      threaded.dispose();
    }
    // The registry's labels disagree with the artifact's: refused on the thread too.
    const wrong = { ...version, labels: ['cat', 'dog', 'bird'] };
    const error = await worker.load(wrong).catch((e: unknown) => e);
    expect(isMenagerieError(error, 'MODEL_ARTIFACT_INVALID')).toBe(true);
  });

  it('swaps the champion under load without losing a request or a tensor', async () => {
    const engine = await threadEngine();
    try {
      await engine.predict(images[0]!);
      const before = await worker.numTensors();
      const load = Array.from({ length: 48 }, (_, i) => engine.predict(images[i % images.length]!));
      await registry.promoteChampion(NAME, 2);
      const swapped = await engine.refresh();
      const after = Array.from({ length: 16 }, (_, i) =>
        engine.predict(images[i % images.length]!),
      );
      const answers = await Promise.all([...load, ...after]);
      expect(swapped).toEqual({ changed: true, serving: { name: NAME, version: 2 } });
      expect(answers).toHaveLength(64);
      expect(answers.slice(48).every((p) => p.modelVersion.version === 2)).toBe(true);
      expect(engine.stats().largestBatch).toBeGreaterThan(1);
      await waitFor(() => engine.status().retiring.length === 0, 'version 1 to retire');
      // Version 1's weights are freed on the thread, version 2's took their place.
      expect(await worker.numTensors()).toBe(before);
    } finally {
      await engine.close();
      await registry.promoteChampion(NAME, 1);
    }
  });

  it('fails what a killed thread held with INFERENCE_WORKER_FAILED, then serves again', async () => {
    const engine = await threadEngine();
    try {
      const startsBefore = worker.starts();
      const held = Array.from({ length: 24 }, (_, i) =>
        engine.predict(images[i % images.length]!).then(
          () => 'answered',
          (e: unknown) => (isMenagerieError(e) ? e.code : String(e)),
        ),
      );
      await waitFor(() => worker.inFlight() > 0, 'a pass on the thread');
      await worker.terminateThread();
      const outcomes = await Promise.all(held);
      expect(outcomes).toContain('INFERENCE_WORKER_FAILED');
      expect(outcomes.every((o) => o === 'answered' || o === 'INFERENCE_WORKER_FAILED')).toBe(true);
      // A new thread reloads the serving model; nothing else needed.
      const again = await engine.predict(images[0]!);
      expect(again.modelVersion).toEqual({ name: NAME, version: 1 });
      expect(worker.starts()).toBe(startsBefore + 1);
      expect(engine.status().serving).toEqual({ name: NAME, version: 1 });
    } finally {
      await engine.close();
    }
  });
});

describe('inference thread with a transfer model', () => {
  const files = tempDir('menagerie-model-worker-transfer-');
  let ws: Workspace & { dispose(): Promise<void> };

  beforeAll(async () => {
    const mini = path.join(files.dir, 'mini');
    await saveMiniMobilenet(mini);
    const source = path.join(files.dir, 'src');
    await writeDemoDataset({ dir: source, perClass: 4, size: 64, seed: 'worker' });
    ws = await tempWorkspace();
    await ingestImages(ws, { source });
    const { runId, result } = await runTrackedTraining(jobContext(ws), {
      plugin: 'transfer',
      hp: { backbone: mini, input_size: 32, feature_layer: 'conv_pw_2_relu', views: 1 },
      epochs: 1,
      batchSize: 8,
      experiment: 'worker',
    });
    expect(result.status).toBe('FINISHED');
    await registerRunModel(createModelRegistry({ db: ws.database.db }), ws.tracking, ws.plugins, {
      name: NAME,
      runId,
    });
  }, 120_000);

  afterAll(async () => {
    await ws?.dispose();
    files.remove();
  });

  it('feeds the head from its backbone as the main thread does', async () => {
    const registry = createModelRegistry({ db: ws.database.db });
    const version = await registry.getModelVersion(NAME, 1);
    const worker = createModelWorker({ cacheDir: path.join(ws.dataDir, 'cache') });
    const main = await loadServedModel(version, ws);
    try {
      const threaded = await worker.load(version, ws.artifacts);
      expect(threaded.backbone).toEqual(main.backbone);
      const bytes = await testImages(3);
      const pixels = await Promise.all(bytes.map((b) => decodeToPixels(b, main.inputSpec)));
      const here = main.forward(pixels);
      const there = await threaded.forward(pixels);
      expect(there.features!.map((f) => Array.from(f))).toEqual(
        here.features!.map((f) => Array.from(f)),
      );
      expect(there.probabilities.map((p) => Array.from(p))).toEqual(
        here.probabilities.map((p) => Array.from(p)),
      );
    } finally {
      main.dispose();
      await worker.close();
    }
  });
});
