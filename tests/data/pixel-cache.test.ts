import fs from 'node:fs';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import type { InputSpec } from '../../data/input-spec.js';
import { openPixelCache, pixelCacheKey } from '../../data/pixel-cache.js';
import { tempDir } from '../helpers/fixtures.js';

const SPEC: InputSpec = { size: 4, channels: 3, fit: 'fill', scale: 1 / 255, offset: 0 };
const RECORD = 4 * 4 * 3;
const images = (n: number, from = 1) =>
  Array.from({ length: n }, (_, i) => ({
    id: from + i,
    sha256: String(from + i).padStart(64, '0'),
  }));
const pixels = (value: number) => new Uint8Array(RECORD).fill(value);

describe('openPixelCache', () => {
  const cleanups: (() => unknown)[] = [];
  afterEach(async () => {
    for (const c of cleanups.splice(0).reverse()) await c();
  });
  const folder = () => {
    const t = tempDir('menagerie-cache-');
    cleanups.push(t.remove);
    return t.dir;
  };

  it('keys on the ordered ids, their sha256 and the size and fit', () => {
    const base = pixelCacheKey(images(3), SPEC);
    expect(pixelCacheKey(images(3), { ...SPEC, scale: 1 })).toBe(base);
    expect(pixelCacheKey(images(3).reverse(), SPEC)).not.toBe(base);
    expect(pixelCacheKey(images(4), SPEC)).not.toBe(base);
    expect(
      pixelCacheKey([{ ...images(1)[0]!, sha256: 'f'.repeat(64) }, ...images(2, 2)], SPEC),
    ).not.toBe(base);
    expect(pixelCacheKey(images(3), { ...SPEC, size: 8 })).not.toBe(base);
    expect(pixelCacheKey(images(3), { ...SPEC, fit: 'cover' })).not.toBe(base);
    // Naming sharp, the default, keeps the key; the other decoder's pixels are others.
    expect(pixelCacheKey(images(3), { ...SPEC, decoder: 'sharp' })).toBe(base);
    expect(pixelCacheKey(images(3), { ...SPEC, decoder: 'tensorflow' })).not.toBe(base);
  });

  it('marks itself complete only when every record is written, and reads back across opens', async () => {
    const cacheDir = folder();
    for (const maxInMemoryBytes of [0, 1e9]) {
      const set = images(3, maxInMemoryBytes + 1);
      const cache = await openPixelCache({ cacheDir, images: set, spec: SPEC, maxInMemoryBytes });
      const entry = path.join(cacheDir, 'pixels', cache.key, 'entry.json');
      await cache.write(0, pixels(10));
      await cache.write(2, pixels(30));
      expect(JSON.parse(fs.readFileSync(entry, 'utf8')).complete).toBe(false);
      await cache.write(1, pixels(20));
      await cache.close();
      expect(JSON.parse(fs.readFileSync(entry, 'utf8')).complete).toBe(true);
      const again = await openPixelCache({ cacheDir, images: set, spec: SPEC, maxInMemoryBytes });
      expect(again.filled).toBe(3);
      expect(Array.from(await again.read(1))).toEqual(Array.from(pixels(20)));
      await again.close();
    }
  });

  it('resumes a partial entry, dropping a record whose bytes do not match its checksum', async () => {
    const cacheDir = folder();
    const cache = await openPixelCache({ cacheDir, images: images(3), spec: SPEC });
    await cache.write(0, pixels(10));
    await cache.write(1, pixels(20));
    await cache.close();
    // A torn write: record 1's bytes changed after its index slot was written.
    const file = path.join(cacheDir, 'pixels', cache.key, 'pixels.bin');
    const fd = fs.openSync(file, 'r+');
    fs.writeSync(fd, Buffer.from([99]), 0, 1, RECORD + 5);
    fs.closeSync(fd);
    const resumed = await openPixelCache({ cacheDir, images: images(3), spec: SPEC });
    expect([0, 1, 2].map((i) => resumed.has(i))).toEqual([true, false, false]);
    await resumed.close();
  });

  it('trims the least recently used entries past the size cap, never the one opening', async () => {
    const cacheDir = folder();
    const keys: string[] = [];
    for (let i = 0; i < 3; i++) {
      const cache = await openPixelCache({ cacheDir, images: images(10, i * 100), spec: SPEC });
      for (let r = 0; r < 10; r++) await cache.write(r, pixels(r));
      await cache.close();
      keys.push(cache.key);
      // Distinct last-used times, oldest first.
      const when = new Date(Date.now() - (3 - i) * 60_000);
      fs.utimesSync(path.join(cacheDir, 'pixels', cache.key, 'entry.json'), when, when);
    }
    // Room for two entries of 10 records: opening a fourth removes the two oldest.
    const entryBytes = 10 * RECORD + 10 * 8;
    const fourth = await openPixelCache({
      cacheDir,
      images: images(10, 900),
      spec: SPEC,
      maxBytes: 2 * entryBytes,
    });
    await fourth.close();
    expect(fs.readdirSync(path.join(cacheDir, 'pixels')).sort()).toEqual(
      [keys[2], fourth.key].sort(),
    );
  });
});
