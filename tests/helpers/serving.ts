import path from 'node:path';
import { registerModelArtifact } from '../../registry/register-model.js';
import { runEmbeddingJob } from '../../serving/embedding-job.js';
import { loadServedModel } from '../../serving/served-model.js';
import { makeImage } from './fixtures.js';
import { saveTinyModel } from './models.js';
import type { TestServer } from './server.js';

export const PREDICT = `mutation Predict($file: Upload!, $topK: Int) {
  predict(file: $file, topK: $topK) {
    id label confidence uncertain latencyMs createdAt
    probabilities { label probability }
    modelVersion { name version }
    similar(k: 4) { method reason images { distance image { id label { name } } } }
  }
}`;

export interface PredictData {
  predict: {
    id: string;
    label: string;
    confidence: number;
    uncertain: boolean;
    latencyMs: number;
    createdAt: string;
    probabilities: { label: string; probability: number }[];
    modelVersion: { name: string; version: number };
    similar: {
      method: 'EMBEDDING' | 'RANDOM';
      reason: string | null;
      images: { distance: number | null; image: { id: string; label: { name: string } } }[];
    };
  };
}

/** Registers a tiny real model as the next version of `name` (READY, not promoted). */
export async function registerTinyModel(
  t: TestServer,
  name: string,
  options: { labels?: string[]; seed?: number } = {},
) {
  const dir = path.join(t.workspace.dataDir, `tiny-${name}-${options.seed ?? 1}-${Date.now()}`);
  await saveTinyModel(dir, options);
  return registerModelArtifact(t.server.services.registry, t.workspace.plugins, { name, dir });
}

/** Adds `perLabel` distinct images for each label, straight through the image service. */
export async function addImages(t: TestServer, labels: readonly string[], perLabel: number) {
  let seed = 1000;
  for (const label of labels)
    for (let i = 0; i < perLabel; i++)
      await t.server.services.images.add(await makeImage(seed++, { size: 32 }), { label });
}

/** Computes a version's embeddings in this process, as `menagerie embed` would. */
export async function embedInProcess(t: TestServer, name: string, version: number) {
  const { registry } = t.server.services;
  return runEmbeddingJob(
    {
      database: t.workspace.database,
      blobs: t.workspace.blobs,
      loadModel: async () =>
        loadServedModel(await registry.getModelVersion(name, version), t.workspace),
    },
    { name, version },
  );
}
