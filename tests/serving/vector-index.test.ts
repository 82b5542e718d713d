import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import type { OpenDatabase } from '../../data/database.js';
import { createRng } from '../../core/random.js';
import { vectorIndex, type VectorIndex, type VectorItem } from '../../serving/vector-index.js';
import {
  databaseBackend,
  DATABASE_BACKENDS,
  forEachDatabase,
  SERVICE_START_TIMEOUT,
} from '../helpers/backends.js';

const v = (...values: number[]) => new Float32Array(values);

/**
 * `n` points around `clusters` random centres, 10 looks each: what embeddings look like,
 * unlike uniform noise (where every neighbour is nearly as far as any other).
 */
function clustered(seed: number, n: number, dimension: number, clusters: number): VectorItem[] {
  const rng = createRng(seed);
  const around = (centre: Float32Array, sd: number) =>
    Float32Array.from(centre, (x) => x + rng.normal(0, sd));
  const centres = Array.from({ length: clusters }, () =>
    Float32Array.from({ length: dimension }, () => rng.normal(0, 1)),
  );
  const looks = centres.map((c) => Array.from({ length: 10 }, () => around(c, 0.35)));
  return Array.from({ length: n }, (_, i) => {
    const c = i % clusters;
    return { id: i + 1, label: `l${c % 3}`, vector: around(looks[c]![rng.int(0, 9)]!, 0.1) };
  });
}

forEachDatabase((backend) => {
  let database: OpenDatabase;
  let index: VectorIndex;
  beforeEach(async () => {
    database = await backend.open();
    index = vectorIndex(database);
  }, SERVICE_START_TIMEOUT);
  afterEach(() => database.close());

  describe('the vector index contract', () => {
    it('keeps vectors by space: upsert replaces, delete removes, queries by cosine distance', async () => {
      await index.ensure('model-version:1', 3);
      await index.ensure('model-version:1', 3); // a second ensure changes nothing
      await expect(index.ensure('model-version:1', 4)).rejects.toThrow(/holds 3-value vectors/);
      await index.ensure('backbone:tiny', 2);
      expect(await index.dimension('model-version:1')).toBe(3);
      expect(await index.dimension('nowhere')).toBeNull();

      await index.upsert('model-version:1', [
        { id: 1, label: 'cat', vector: v(1, 0, 0) },
        { id: 2, label: 'cat', vector: v(0.9, 0.1, 0) },
        { id: 3, label: 'dog', vector: v(0, 1, 0) },
        { id: 4, label: 'dog', vector: v(-1, 0, 0) },
      ]);
      await index.upsert('backbone:tiny', [{ id: 1, label: 'cat', vector: v(0, 1) }]);
      await index.upsert('model-version:1', [{ id: 4, label: 'dog', vector: v(0.7, 0.7, 0) }]);
      expect(await index.count('model-version:1')).toBe(4);
      expect(await index.count('backbone:tiny')).toBe(1);
      expect([...(await index.ids('model-version:1'))].sort()).toEqual([1, 2, 3, 4]);
      expect(Array.from((await index.get('model-version:1', 4))!)).toEqual([
        0.699999988079071, 0.699999988079071, 0,
      ]);
      expect(await index.get('model-version:1', 99)).toBeNull();

      const near = await index.query('model-version:1', v(1, 0, 0), 3);
      expect(near.map((n) => n.id)).toEqual([1, 2, 4]);
      expect(near[0]!.distance).toBeCloseTo(0, 6);
      expect(near[2]!.distance).toBeCloseTo(1 - Math.SQRT1_2, 5);
      const dogs = await index.query('model-version:1', v(1, 0, 0), 5, { label: 'dog' });
      expect(dogs.map((n) => [n.id, n.label])).toEqual([
        [4, 'dog'],
        [3, 'dog'],
      ]);
      await expect(index.query('model-version:1', v(1, 0), 3)).rejects.toThrow(RangeError);

      await index.delete('model-version:1', [2, 3]);
      expect(await index.count('model-version:1')).toBe(2);
      expect((await index.scan('model-version:1', 1, 10)).map((i) => i.id)).toEqual([4]);
      expect(await index.spaces()).toEqual([
        { space: 'model-version:1', dimension: 3, count: 2 },
        { space: 'backbone:tiny', dimension: 2, count: 1 },
      ]);
      await index.drop('backbone:tiny');
      expect(await index.dimension('backbone:tiny')).toBeNull();
      expect(await index.count('backbone:tiny')).toBe(0);
    });
  });
});

describe.runIf(DATABASE_BACKENDS.length === 2)('pgvector and sqlite-vec', () => {
  const sqlite = databaseBackend('sqlite');
  const postgres = databaseBackend('postgres');
  let a: OpenDatabase;
  let b: OpenDatabase;
  beforeAll(async () => {
    [a, b] = await Promise.all([sqlite.open(), postgres.open()]);
  }, SERVICE_START_TIMEOUT);
  afterAll(async () => {
    await Promise.all([a.close(), b.close()]);
  });

  it('give the same top-k on the same clustered data; HNSW nearly all of it', async () => {
    // Queries are more points of the same distribution, not used as items.
    const generated = clustered(7, 3030, 32, 12);
    const items = generated.slice(0, 3000);
    const queries = generated.slice(3000);
    const space = 'model-version:1';
    const lite = vectorIndex(a);
    const exact = vectorIndex(b, { hnswThreshold: 1_000_000 });
    const hnsw = vectorIndex(b, { hnswThreshold: 1000 });
    await lite.ensure(space, 32);
    await exact.ensure(space, 32);
    await lite.upsert(space, items);
    await exact.upsert(space, items);
    expect(await exact.optimize(space)).toBe('exact');

    const topK = async (index: VectorIndex, label?: string) =>
      Promise.all(
        queries.map(async (q) =>
          (await index.query(space, q.vector, 10, label ? { label } : {})).map((n) => n.id),
        ),
      );
    const reference = await topK(lite);
    expect(await topK(exact)).toEqual(reference);
    expect(await topK(exact, 'l1')).toEqual(await topK(lite, 'l1'));

    expect(await hnsw.optimize(space)).toBe('hnsw');
    // The graph is approximate (and built in parallel, so not the same twice): on clustered
    // data it finds nearly all the exact neighbours, label filter included.
    const recall = (found: number[][], truth: number[][]) =>
      found.reduce((n, ids, i) => n + ids.filter((id) => truth[i]!.includes(id)).length, 0) /
      truth.reduce((n, ids) => n + ids.length, 0);
    expect(recall(await topK(hnsw), reference)).toBeGreaterThanOrEqual(0.9);
    expect(recall(await topK(hnsw, 'l1'), await topK(lite, 'l1'))).toBeGreaterThanOrEqual(0.9);
  }, 120_000);
});
