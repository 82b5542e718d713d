import fs from 'node:fs';
import path from 'node:path';
import sharp from 'sharp';
import { afterEach, describe, expect, it } from 'vitest';
import { writeContactSheet } from '../../demo/contact-sheet.js';
import { writeDemoDataset } from '../../demo/demo-dataset.js';
import { createRng } from '../../core/random.js';
import { tempDir } from '../helpers/fixtures.js';

describe('writeDemoDataset', () => {
  const cleanups: (() => void)[] = [];
  afterEach(() => cleanups.splice(0).forEach((c) => c()));
  const folder = (): string => {
    const t = tempDir('menagerie-demo-');
    cleanups.push(t.remove);
    return t.dir;
  };

  it('writes the AFHQ layout with a per-class validation share, as valid JPEGs', async () => {
    const dir = folder();
    const result = await writeDemoDataset({ dir, perClass: 10, size: 128, seed: 3 });
    expect(result.files).toBe(30);
    expect(result.counts).toEqual({
      train: { cat: 8, dog: 8, wild: 8 },
      val: { cat: 2, dog: 2, wild: 2 },
    });
    expect(fs.readdirSync(path.join(dir, 'val', 'dog')).sort()).toEqual([
      'dog_00009.jpg',
      'dog_00010.jpg',
    ]);
    const meta = await sharp(path.join(dir, 'train', 'wild', 'wild_00001.jpg')).metadata();
    expect([meta.format, meta.width, meta.height, meta.channels]).toEqual(['jpeg', 128, 128, 3]);
  });

  it('is deterministic for a seed, differs across seeds, and keeps files on a re-run', async () => {
    const [a, b, c] = [folder(), folder(), folder()];
    await writeDemoDataset({ dir: a, perClass: 3, size: 96, seed: 'x' });
    await writeDemoDataset({ dir: b, perClass: 3, size: 96, seed: 'x' });
    await writeDemoDataset({ dir: c, perClass: 3, size: 96, seed: 'y' });
    const file = path.join('train', 'cat', 'cat_00001.jpg');
    expect(fs.readFileSync(path.join(a, file))).toEqual(fs.readFileSync(path.join(b, file)));
    expect(fs.readFileSync(path.join(a, file))).not.toEqual(fs.readFileSync(path.join(c, file)));

    const before = fs.statSync(path.join(a, file)).mtimeMs;
    fs.writeFileSync(path.join(a, 'train', 'dog', 'dog_00001.jpg'), 'half a file');
    const progress: number[] = [];
    await writeDemoDataset({
      dir: a,
      perClass: 3,
      size: 96,
      seed: 'x',
      onProgress: (done) => progress.push(done),
    });
    expect(progress.at(-1)).toBe(9);
    expect(fs.statSync(path.join(a, file)).mtimeMs).toBe(before);
    // A damaged file is redrawn, identical to a clean run's.
    expect(fs.readFileSync(path.join(a, 'train', 'dog', 'dog_00001.jpg'))).toEqual(
      fs.readFileSync(path.join(b, 'train', 'dog', 'dog_00001.jpg')),
    );
    expect(fs.readdirSync(path.join(a, 'train', 'dog')).filter((f) => f.endsWith('.tmp'))).toEqual(
      [],
    );
  });

  it('refuses a bad size of set', async () => {
    await expect(writeDemoDataset({ dir: folder(), perClass: 0 })).rejects.toThrow(/perClass/);
    await expect(writeDemoDataset({ dir: folder(), perClass: 2, valFraction: 2 })).rejects.toThrow(
      /valFraction/,
    );
  });

  it('draws a contact sheet with one row per label', async () => {
    const dir = folder();
    await writeDemoDataset({ dir, perClass: 4, size: 96 });
    const out = path.join(dir, 'sheet.png');
    await writeContactSheet({ dir, out, perLabel: 4, tile: 32 });
    const meta = await sharp(out).metadata();
    expect([meta.format, meta.width, meta.height]).toEqual(['png', 32 * 6, 32 * 3]);
  });
});

describe('createRng', () => {
  it('repeats for a seed and forks independently of position', () => {
    const a = createRng(42);
    const b = createRng('42');
    expect([a.next(), a.next()]).toEqual([b.next(), b.next()]);
    const fresh = createRng(42).fork('cat');
    expect(a.fork('cat').next()).toBe(fresh.next());
    const rng = createRng(1);
    for (let i = 0; i < 1000; i++) {
      const x = rng.int(1, 6);
      expect(x >= 1 && x <= 6 && Number.isInteger(x)).toBe(true);
    }
    expect(() => rng.pick([])).toThrow(/non-empty/);
  });
});
