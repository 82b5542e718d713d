import path from 'node:path';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import {
  loadImageDataset,
  type DatasetLoadEvent,
  type LoadImageDatasetOptions,
  type LoadedImageDataset,
} from '../../data/dataset-loader.js';
import { isMenagerieError } from '../../core/errors.js';
import { insertImages } from '../../data/image-catalog.js';
import { ingestImages } from '../../data/ingest/ingest.js';
import type { InputSpec } from '../../data/input-spec.js';
import { decodeToPixels, pixelsToTensor } from '../../data/preprocess.js';
import { loadTensorflow } from '../../tf/tensorflow.js';
import { makeImage, tempDir, writeFile } from '../helpers/fixtures.js';
import { tempWorkspace } from '../helpers/workspace.js';
import { forEachDatabase } from '../helpers/backends.js';

forEachDatabase((backend) => {
  type Tf = Awaited<ReturnType<typeof loadTensorflow>>;
  type TempWorkspace = Awaited<ReturnType<typeof tempWorkspace>>;

  const SPEC: InputSpec = { size: 16, channels: 3, fit: 'fill', scale: 1 / 255, offset: 0 };
  /** Imbalanced on purpose: 8 cat, 4 dog, 2 wild in train; 2 of each in val. */
  const TRAIN = { cat: 8, dog: 4, wild: 2 } as const;

  let tf: Tf;
  beforeAll(async () => {
    tf = await loadTensorflow();
  });

  /** Examples of an epoch as strings of their pixel values, with their class index. */
  async function collect(dataset: LoadedImageDataset, epoch: number) {
    const examples: { key: string; label: number }[] = [];
    const batchLabels: number[][] = [];
    for await (const { xs, ys } of dataset.batches(epoch)) {
      const [n, size] = xs.shape;
      expect(xs.shape).toEqual([n, size, size, 3]);
      expect(ys.shape).toEqual([n, dataset.labels.length]);
      const x = xs.dataSync();
      const y = ys.dataSync();
      const each = size * size * 3;
      const labels: number[] = [];
      for (let i = 0; i < n; i++) {
        const row = Array.from(
          y.subarray(i * dataset.labels.length, (i + 1) * dataset.labels.length),
        );
        expect(row.filter((v) => v === 1)).toHaveLength(1);
        expect(row.filter((v) => v === 0)).toHaveLength(row.length - 1);
        labels.push(row.indexOf(1));
        examples.push({
          key: Array.from(x.subarray(i * each, (i + 1) * each)).join(','),
          label: row.indexOf(1),
        });
      }
      batchLabels.push(labels);
      tf.dispose([xs, ys]);
    }
    return { examples, batchLabels, keys: examples.map((e) => e.key) };
  }

  describe('loadImageDataset', () => {
    const cleanups: (() => unknown)[] = [];
    afterEach(async () => {
      for (const c of cleanups.splice(0).reverse()) await c();
    });

    async function setup(): Promise<{ ws: TempWorkspace; cacheDir: string; src: string }> {
      const ws = await tempWorkspace({ database: backend });
      cleanups.push(ws.dispose);
      const { dir: src, remove } = tempDir('menagerie-src-');
      cleanups.push(remove);
      let seed = 1;
      for (const [label, n] of Object.entries(TRAIN)) {
        for (let i = 0; i < n; i++) {
          writeFile(
            path.join(src, `train/${label}/${i}.jpg`),
            await makeImage(seed++, { size: 48 }),
          );
        }
        for (let i = 0; i < 2; i++) {
          writeFile(
            path.join(src, `val/${label}/${i}.png`),
            await makeImage(seed++, { size: 40, format: 'png' }),
          );
        }
      }
      await ingestImages(ws, { source: src });
      return { ws, cacheDir: path.join(ws.dataDir, 'cache'), src };
    }

    async function open(
      ws: TempWorkspace,
      options: Partial<LoadImageDatasetOptions>,
    ): Promise<LoadedImageDataset> {
      const dataset = await loadImageDataset({
        db: ws.database.db,
        blobs: ws.blobs,
        split: 'train',
        spec: SPEC,
        batchSize: 4,
        seed: 7,
        cacheDir: path.join(ws.dataDir, 'cache'),
        ...options,
      });
      cleanups.push(() => dataset.close());
      return dataset;
    }

    it('yields one-hot batches of the right shape, every example once per epoch, classes mixed', async () => {
      const { ws } = await setup();
      const train = await open(ws, {});
      expect(train.labels).toEqual(['cat', 'dog', 'wild']);
      expect(train.size).toBe(14);
      expect(train.counts).toEqual([8, 4, 2]);
      // Keras: total / (classes × count).
      expect(train.classWeights[0]).toBeCloseTo(14 / (3 * 8));
      expect(train.classWeights[1]).toBeCloseTo(14 / (3 * 4));
      expect(train.classWeights[2]).toBeCloseTo(14 / (3 * 2));

      const e0 = await collect(train, 0);
      const e1 = await collect(train, 1);
      expect(e0.batchLabels.map((b) => b.length)).toEqual([4, 4, 4, 2]);
      // Same multiset of examples, each once, with their labels; the order differs by epoch.
      expect(new Set(e0.keys).size).toBe(14);
      expect([...e0.examples].sort(byKey)).toEqual([...e1.examples].sort(byKey));
      expect(e0.keys).not.toEqual(e1.keys);
      // Ingest order is class-sorted; shuffled batches are not.
      expect(e0.batchLabels.filter((b) => new Set(b).size > 1).length).toBeGreaterThanOrEqual(3);

      // The same seed replays the same order; another seed does not.
      const again = await open(ws, {});
      expect((await collect(again, 1)).keys).toEqual(e1.keys);
      const other = await open(ws, { seed: 8 });
      expect((await collect(other, 1)).keys).not.toEqual(e1.keys);
    });

    it('gives validation the exact serving pixels, unshuffled, and refuses to augment it', async () => {
      const { ws } = await setup();
      const val = await open(ws, { split: 'val' });
      expect(val.counts).toEqual([2, 2, 2]);
      const rows = await ws.database.db
        .selectFrom('images')
        .select(['id', 'uri'])
        .where('split', '=', 'val')
        .orderBy('id')
        .execute();
      expect(val.imageIds).toEqual(rows.map((r) => r.id));
      const expected = pixelsToTensor(
        tf,
        await Promise.all(rows.map(async (r) => decodeToPixels(await ws.blobs.get(r.uri), SPEC))),
        SPEC,
      );
      const got = (await collect(val, 3)).keys;
      const each = SPEC.size * SPEC.size * 3;
      const want = expected.dataSync();
      expect(got).toEqual(
        rows.map((_, i) => Array.from(want.subarray(i * each, (i + 1) * each)).join(',')),
      );
      expected.dispose();

      for (const split of ['val', 'test'] as const) {
        const error = await open(ws, { split, augment: true }).catch((e: unknown) => e);
        expect(isMenagerieError(error, 'CONFIG_INVALID')).toBe(true);
      }
    });

    it('augments train batches reproducibly: pixels change, shape and range stay', async () => {
      const { ws } = await setup();
      const plain = await collect(await open(ws, {}), 0);
      const augmented = await open(ws, { augment: true });
      const a = await collect(augmented, 0);
      expect(a.keys).toHaveLength(plain.keys.length);
      // Same order (the shuffle does not depend on augmentation), different pixels.
      expect(a.examples.map((e) => e.label)).toEqual(plain.examples.map((e) => e.label));
      a.keys.forEach((key, i) => expect(key).not.toEqual(plain.keys[i]));
      for (const key of a.keys) {
        const values = key.split(',').map(Number);
        expect(Math.min(...values)).toBeGreaterThanOrEqual(0);
        expect(Math.max(...values)).toBeLessThanOrEqual(1);
      }
      // Same seed and epoch: the same tensors, bit for bit; the next epoch differs.
      expect((await collect(await open(ws, { augment: true }), 0)).keys).toEqual(a.keys);
      const next = await collect(augmented, 1);
      expect([...next.keys].sort()).not.toEqual([...a.keys].sort());
    });

    it('decodes on the first pass only, reuses the cache across datasets and rebuilds it when an image is added', async () => {
      const { ws, src } = await setup();
      const events: DatasetLoadEvent[] = [];
      const first = await open(ws, { onProgress: (e) => events.push(e) });
      await collect(first, 0);
      expect(first.decoded).toBe(14);
      expect(events.filter((e) => e.kind === 'cache-complete')).toHaveLength(1);
      await collect(first, 1);
      expect(first.decoded).toBe(14);

      const reopened = await open(ws, {});
      expect(reopened.cacheKey).toBe(first.cacheKey);
      await collect(reopened, 0);
      expect(reopened.decoded).toBe(0);

      writeFile(path.join(src, 'train/dog/new.jpg'), await makeImage(99, { size: 48 }));
      await ingestImages(ws, { source: src });
      const grown = await open(ws, {});
      expect(grown.size).toBe(15);
      expect(grown.cacheKey).not.toBe(first.cacheKey);
      await collect(grown, 0);
      expect(grown.decoded).toBe(15);
      // Another size is another cache entry.
      const bigger = await open(ws, { spec: { ...SPEC, size: 24 } });
      expect(bigger.cacheKey).not.toBe(grown.cacheKey);
    });

    it('resumes a cache left half built', async () => {
      const { ws } = await setup();
      const partial = await open(ws, { prefetch: 0 });
      for await (const { xs, ys } of partial.batches(0)) {
        tf.dispose([xs, ys]);
        break;
      }
      await partial.close();
      const filled = partial.decoded;
      expect(filled).toBeGreaterThanOrEqual(4);
      expect(filled).toBeLessThan(14);
      const resumed = await open(ws, {});
      await collect(resumed, 0);
      expect(resumed.decoded).toBe(14 - filled);
    });

    it('does not grow tf.memory across epochs when batches are disposed', async () => {
      const { ws } = await setup();
      const train = await open(ws, { augment: true });
      await collect(train, 0);
      const before = tf.memory().numTensors;
      for (let epoch = 1; epoch < 4; epoch++) await collect(train, epoch);
      expect(tf.memory().numTensors).toBe(before);
    });

    it('names a corrupt image in its error', async () => {
      const { ws } = await setup();
      const garbage = Buffer.from('this is not a jpeg at all');
      const uri = await ws.blobs.put(garbage, { ext: 'jpg' });
      await insertImages(ws.database.db, [
        {
          label: 'cat',
          split: 'train',
          sha256: 'f'.repeat(64),
          uri,
          width: 48,
          height: 48,
          format: 'jpeg',
          bytes: garbage.length,
          source_path: null,
          added_at: Date.now(),
        },
      ]);
      const { id } = await ws.database.db
        .selectFrom('images')
        .select('id')
        .where('uri', '=', uri)
        .executeTakeFirstOrThrow();
      const train = await open(ws, {});
      const error = await collect(train, 0).catch((e: unknown) => e);
      expect(isMenagerieError(error, 'IMAGE_UNREADABLE')).toBe(true);
      expect((error as Error).message).toContain(`image ${id}`);
    });

    it('refuses empty splits and unknown labels; filters and limits labels', async () => {
      const { ws } = await setup();
      const empty = await open(ws, { split: 'test' }).catch((e: unknown) => e);
      expect(isMenagerieError(empty, 'DATASET_EMPTY')).toBe(true);
      const unknown = await open(ws, { labels: ['cat', 'unicorn'] }).catch((e: unknown) => e);
      expect(isMenagerieError(unknown, 'LABEL_NOT_FOUND')).toBe(true);
      expect((unknown as Error).message).toContain('unicorn');

      const two = await open(ws, { labels: ['wild', 'cat'], limitPerLabel: 3 });
      expect(two.labels).toEqual(['wild', 'cat']);
      expect(two.counts).toEqual([2, 3]);
      const { examples } = await collect(two, 0);
      expect(examples.filter((e) => e.label === 1)).toHaveLength(3);
    });
  });

  function byKey(a: { key: string }, b: { key: string }): number {
    return a.key < b.key ? -1 : a.key > b.key ? 1 : 0;
  }
});
