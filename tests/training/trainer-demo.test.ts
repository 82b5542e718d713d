import fs from 'node:fs';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { writeDemoDataset } from '../../demo/demo-dataset.js';
import { loadImageDataset } from '../../data/dataset-loader.js';
import { ingestImages } from '../../data/ingest/ingest.js';
import { loadTensorflow } from '../../tf/tensorflow.js';
import { cnnModel } from '../../plugins/models/cnn.js';
import { HyperParameters } from '../../plugin-api/hyperparameters.js';
import { loadModelArtifact } from '../../training/model-artifact.js';
import { trainModel } from '../../training/trainer.js';
import { tempDir } from '../helpers/fixtures.js';
import { tempWorkspace } from '../helpers/workspace.js';

describe('training the default cnn on ingested demo images', () => {
  const src = tempDir('menagerie-demo-src-');
  const out = tempDir('menagerie-demo-out-');
  afterAll(() => {
    src.remove();
    out.remove();
  });

  it('reads them through the dataset loader, trains 2 epochs and saves a loadable model', async () => {
    const tf = await loadTensorflow();
    await writeDemoDataset({ dir: src.dir, perClass: 20, size: 96, valFraction: 0.25, seed: 1 });
    const ws = await tempWorkspace();
    try {
      const report = await ingestImages(ws, { source: src.dir });
      expect(report.added).toBe(60);
      const plugin = cnnModel();
      const hp = new HyperParameters();
      plugin.space(hp);
      const spec = plugin.inputSpec(hp);
      const common = { db: ws.database.db, blobs: ws.blobs, spec, batchSize: 16, seed: 1 };
      const cacheDir = path.join(ws.dataDir, 'cache');
      const train = await loadImageDataset({ ...common, split: 'train', augment: true, cacheDir });
      const val = await loadImageDataset({ ...common, split: 'val', cacheDir });
      expect([train.size, val.size]).toEqual([45, 15]);
      const before = tf.memory().numTensors;
      const result = await trainModel({
        plugin,
        hp,
        train,
        val,
        epochs: 2,
        seed: 1,
        outputDir: out.dir,
      });
      await Promise.all([train.close(), val.close()]);
      expect(tf.memory().numTensors).toBe(before);
      expect(result.status).toBe('FINISHED');
      expect(result.history.map((h) => h.epoch)).toEqual([0, 1]);
      for (const h of result.history) expect(Number.isFinite(h.val_loss)).toBe(true);
      expect(fs.existsSync(path.join(result.artifactDir!, 'confusion_matrix.png'))).toBe(true);
      const { model, manifest } = await loadModelArtifact(result.artifactDir!);
      expect(manifest).toMatchObject({
        plugin: 'menagerie:cnn',
        labels: ['cat', 'dog', 'wild'],
        inputSpec: spec,
      });
      model.dispose();
    } finally {
      await ws.dispose();
    }
  });
});
