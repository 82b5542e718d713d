import { afterEach, describe, expect, it } from 'vitest';
import { countImages, insertImages } from '../../data/image-catalog.js';
import { forEachDatabase } from '../helpers/backends.js';
import { tempWorkspace } from '../helpers/workspace.js';

forEachDatabase((backend) => {
  describe('insertImages', () => {
    const cleanups: (() => unknown)[] = [];
    afterEach(async () => {
      for (const c of cleanups.splice(0)) await c();
    });

    /** A row whose sha256 is `prefix` padded with 'b's. */
    const row = (prefix: string, label: string) => ({
      label,
      split: 'train' as const,
      sha256: prefix.padEnd(64, 'b'),
      uri: `file:///images/${prefix}.jpg`,
      width: 32,
      height: 24,
      format: 'jpeg',
      bytes: 100,
      source_path: `/images/${prefix}.jpg`,
      added_at: Date.now(),
    });

    it('inserts many rows in slices and reports the sha256 of each row already stored', async () => {
      const ws = await tempWorkspace({ database: backend });
      cleanups.push(ws.dispose);
      const { db } = ws.database;
      expect(await insertImages(db, [row('a', 'cat')])).toEqual({ inserted: 1, skippedSha256: [] });
      // 1,200 rows: more than one INSERT's slice, with a row stored before and a repeat.
      const many = Array.from({ length: 1200 }, (_, i) =>
        row(i.toString(16).padStart(8, '0'), i % 2 ? 'dog' : 'cat'),
      );
      const result = await insertImages(db, [
        ...many.slice(0, 700),
        row('a', 'cat'),
        many[3]!,
        ...many.slice(700),
      ]);
      expect(result).toEqual({
        inserted: 1200,
        skippedSha256: ['a'.padEnd(64, 'b'), many[3]!.sha256],
      });
      const counts = await countImages(db);
      expect(counts.map((c) => [c.label, c.count])).toEqual([
        ['cat', 601],
        ['dog', 600],
      ]);
    });
  });
});
