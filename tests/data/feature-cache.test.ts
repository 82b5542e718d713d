import fs from 'node:fs';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import {
  featureCacheKey,
  openFeatureCache,
  type FeatureCacheIdentity,
} from '../../data/feature-cache.js';
import { tempDir } from '../helpers/fixtures.js';

const IDENTITY: FeatureCacheIdentity = {
  backbone: 'menagerie:mobilenet_v2_140',
  weightsSha256: 'a'.repeat(64),
  spec: { size: 224, channels: 3, fit: 'fill', scale: 1 / 255, offset: 0 },
  viewsVersion: 1,
};
const sha = (i: number) => i.toString(16).padStart(64, '0');
const vector = (i: number, size = 8) => Float32Array.from({ length: size }, (_, j) => i + j / 10);

describe('the feature cache', () => {
  let dir: ReturnType<typeof tempDir>;
  afterEach(() => dir.remove());

  it('keeps vectors by image and view, across opens', async () => {
    dir = tempDir();
    const cache = await openFeatureCache({ cacheDir: dir.dir, identity: IDENTITY, featureSize: 8 });
    await cache.put([
      { sha256: sha(1), view: 0, features: vector(1) },
      { sha256: sha(1), view: 2, features: vector(12) },
      { sha256: sha(2), view: 0, features: vector(2) },
    ]);
    expect(cache.get(sha(1), 2)).toEqual(vector(12));
    expect(cache.has(sha(1), 1)).toBe(false);
    await cache.close();
    const again = await openFeatureCache({ cacheDir: dir.dir, identity: IDENTITY, featureSize: 8 });
    expect(again.size).toBe(3);
    expect(again.get(sha(1), 0)).toEqual(vector(1));
    expect(again.get(sha(2), 0)).toEqual(vector(2));
    // A record already held is not written twice.
    const file = path.join(dir.dir, 'features', again.key, 'records.bin');
    const bytes = fs.statSync(file).size;
    await again.put([{ sha256: sha(2), view: 0, features: vector(99) }]);
    await again.close();
    expect(fs.statSync(file).size).toBe(bytes);
  });

  it('skips a torn or corrupt record and keeps the ones after it', async () => {
    dir = tempDir();
    const cache = await openFeatureCache({ cacheDir: dir.dir, identity: IDENTITY, featureSize: 8 });
    for (const i of [1, 2, 3]) await cache.put([{ sha256: sha(i), view: 0, features: vector(i) }]);
    await cache.close();
    const file = path.join(dir.dir, 'features', cache.key, 'records.bin');
    const bytes = fs.readFileSync(file);
    const record = bytes.length / 3;
    bytes[record + 50] = bytes[record + 50]! ^ 0xff; // a flipped bit in record 2's floats
    // …and a kill half way through appending record 4.
    fs.writeFileSync(file, Buffer.concat([bytes, bytes.subarray(0, record / 2)]));
    const reopened = await openFeatureCache({
      cacheDir: dir.dir,
      identity: IDENTITY,
      featureSize: 8,
    });
    expect(reopened.has(sha(1), 0)).toBe(true);
    expect(reopened.has(sha(2), 0)).toBe(false);
    expect(reopened.get(sha(3), 0)).toEqual(vector(3));
    // The lost record is simply computed and appended again.
    await reopened.put([{ sha256: sha(2), view: 0, features: vector(2) }]);
    await reopened.close();
    const last = await openFeatureCache({ cacheDir: dir.dir, identity: IDENTITY, featureSize: 8 });
    expect(last.get(sha(2), 0)).toEqual(vector(2));
    await last.close();
  });

  it.each([
    ['another backbone', { backbone: 'menagerie:mobilenet_v2' }],
    ['other weights', { weightsSha256: 'b'.repeat(64) }],
    ['another input size', { spec: { ...IDENTITY.spec, size: 192 } }],
    ['another scaling', { spec: { ...IDENTITY.spec, scale: 1 / 127.5, offset: -1 } }],
    ['another fit', { spec: { ...IDENTITY.spec, fit: 'cover' as const } }],
    ['other augmented views', { viewsVersion: 2 }],
  ])('is another cache for %s: stale features are never read', async (_what, change) => {
    dir = tempDir();
    const changed = { ...IDENTITY, ...change };
    expect(featureCacheKey(changed)).not.toBe(featureCacheKey(IDENTITY));
    const first = await openFeatureCache({ cacheDir: dir.dir, identity: IDENTITY, featureSize: 8 });
    await first.put([{ sha256: sha(1), view: 0, features: vector(1) }]);
    await first.close();
    const other = await openFeatureCache({ cacheDir: dir.dir, identity: changed, featureSize: 8 });
    expect(other.has(sha(1), 0)).toBe(false);
    await other.close();
  });

  it('trims the least recently opened entries past its size cap', async () => {
    dir = tempDir();
    const a = await openFeatureCache({ cacheDir: dir.dir, identity: IDENTITY, featureSize: 8 });
    await a.put(
      Array.from({ length: 10 }, (_, i) => ({ sha256: sha(i), view: 0, features: vector(i) })),
    );
    await a.close();
    const b = await openFeatureCache({
      cacheDir: dir.dir,
      identity: { ...IDENTITY, viewsVersion: 9 },
      featureSize: 8,
      maxBytes: 10, // smaller than entry a
    });
    await b.close();
    expect(fs.existsSync(path.join(dir.dir, 'features', a.key))).toBe(false);
    expect(fs.existsSync(path.join(dir.dir, 'features', b.key))).toBe(true);
  });
});
