import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openDatabase, type OpenDatabase } from '../../data/database.js';
import type { InputSpec } from '../../data/input-spec.js';
import { sharedTensorflowJpegDecoder } from '../../data/tensorflow-jpeg-decoder.js';
import { createModelRegistry } from '../../registry/model-registry.js';
import { registerModelArtifact } from '../../registry/register-model.js';
import { createInferenceEngine, type InferenceEngine } from '../../serving/inference-engine.js';
import { followChampion } from '../../serving/registry-champion.js';
import { AFHQ_MINI, tempDir } from '../helpers/fixtures.js';
import { LOADERS, PLUGINS, saveTinyModel, TINY_SPEC } from './serving-fixtures.js';

const SPEC: InputSpec = { ...TINY_SPEC, decoder: 'tensorflow' };
const photos = ['cat/cat_001.jpg', 'dog/dog_001.jpg', 'wild/wild_001.jpg'].map((file) =>
  fs.readFileSync(path.join(AFHQ_MINI, file)),
);

describe("serving a model whose input spec names the 'tensorflow' decoder", () => {
  let root: ReturnType<typeof tempDir>;
  let database: OpenDatabase;
  let engine: InferenceEngine;

  beforeAll(async () => {
    root = tempDir('menagerie-tf-decoder-');
    database = await openDatabase(path.join(root.dir, 'menagerie.db'));
    const registry = createModelRegistry({ db: database.db, user: 'tester' });
    const dir = await saveTinyModel(path.join(root.dir, 'model'), { seed: 1, spec: SPEC });
    const version = await registerModelArtifact(registry, PLUGINS, { name: 'faces', dir });
    expect(version.inputSpec.decoder).toBe('tensorflow');
    await registry.promoteChampion('faces', version.version);
    engine = await createInferenceEngine(followChampion(registry, LOADERS, 'faces'));
  });

  afterAll(async () => {
    await engine.close();
    await database.close();
    root.remove();
  });

  it('answers from its decoder processes, up before the first request', async () => {
    // Loading the champion started them: the first request does not wait a second for them.
    expect((await sharedTensorflowJpegDecoder()).pids()).toHaveLength(2);
    const [one, again] = await Promise.all([
      engine.predict(photos[0]!),
      engine.predict(photos[0]!),
    ]);
    expect(one!.probabilities).toEqual(again!.probabilities);
    const batch = await engine.predictBatch(photos);
    expect(batch.map((p) => p.label)).toHaveLength(3);
    // One image in a batch of three: the same, to the float rounding of another batch size.
    batch[0]!.probabilities.forEach(({ label, p }, i) => {
      expect(label).toBe(one!.probabilities[i]!.label);
      expect(p).toBeCloseTo(one!.probabilities[i]!.p, 5);
    });
  });

  it('fails the predictions a killed decoder process held, and answers the next ones', async () => {
    const decoder = await sharedTensorflowJpegDecoder();
    const [victim] = decoder.pids();
    const many = Array.from({ length: 300 }, (_, i) => photos[i % 3]!);
    const pending = engine.predictBatch(many);
    process.kill(victim!, 'SIGKILL');
    await expect(pending).rejects.toMatchObject({
      code: 'TF_BACKEND_UNAVAILABLE',
      message: expect.stringContaining('was killed by SIGKILL') as unknown,
    });
    const after = await engine.predictBatch(photos);
    expect(after).toHaveLength(3);
    expect(decoder.pids()).not.toContain(victim);
    expect(engine.status().serving).toMatchObject({ name: 'faces' });
  });
});
