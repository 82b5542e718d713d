import fs from 'node:fs';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import sharp from 'sharp';
import { afterEach, describe, expect, it } from 'vitest';
import { countImages, listImages } from '../../data/image-catalog.js';
import { ingestImages, splitFor } from '../../data/ingest/ingest.js';
import { parseLabelMap } from '../../data/label-name.js';
import { AFHQ_MINI, makeImage, tempDir, writeFile } from '../helpers/fixtures.js';
import { tempWorkspace } from '../helpers/workspace.js';
import { forEachDatabase } from '../helpers/backends.js';

forEachDatabase((backend) => {
  type TempWorkspace = Awaited<ReturnType<typeof tempWorkspace>>;

  describe('ingestImages', () => {
    const cleanups: (() => unknown)[] = [];
    afterEach(async () => {
      for (const c of cleanups.splice(0)) await c();
    });
    const workspace = async (): Promise<TempWorkspace> => {
      const ws = await tempWorkspace({ database: backend });
      cleanups.push(ws.dispose);
      return ws;
    };
    const folder = () => {
      const t = tempDir('menagerie-src-');
      cleanups.push(t.remove);
      return t.dir;
    };

    it('ingests the real afhq-mini sample: 40 cat, 24 dog, 21 wild, all 512×512', async () => {
      const ws = await workspace();
      const report = await ingestImages(ws, { source: AFHQ_MINI });
      expect(report.layout).toBe('label');
      expect(report.added).toBe(85);
      // SOURCES.md sits beside the label folders.
      expect(report.rejected.map((r) => [path.basename(r.path), r.reason])).toEqual([
        ['SOURCES.md', 'unknown-folder'],
      ]);
      const perLabel = Object.fromEntries(
        ['cat', 'dog', 'wild'].map((l) => [
          l,
          report.counts.filter((c) => c.label === l).reduce((n, c) => n + c.count, 0),
        ]),
      );
      expect(perLabel).toEqual({ cat: 40, dog: 24, wild: 21 });
      const rows = await ws.database.db.selectFrom('images').selectAll().execute();
      expect(rows.every((r) => r.width === 512 && r.height === 512)).toBe(true);
      expect(rows.filter((r) => r.format === 'png')).toHaveLength(7);
      // Every label has images on both sides of the split.
      for (const label of ['cat', 'dog', 'wild']) {
        const splits = new Set(report.counts.filter((c) => c.label === label).map((c) => c.split));
        expect([...splits].sort()).toEqual(['train', 'val']);
      }
      // The store holds exactly the bytes ingested.
      const one = rows.find((r) => r.source_path?.endsWith('cat_001.jpg'))!;
      expect((await ws.blobs.get(one.uri)).equals(fs.readFileSync(one.source_path!))).toBe(true);
    });

    it('reports each bad file with its reason, keeps the valid ones, and a re-run adds nothing', async () => {
      const src = folder();
      const good = await makeImage(1, { size: 96 });
      writeFile(path.join(src, 'train/cat/good.jpg'), good);
      writeFile(path.join(src, 'train/cat/copy-of-good.jpg'), good);
      writeFile(path.join(src, 'train/dog/picture.png'), await makeImage(2, { format: 'png' }));
      const full = await makeImage(3, { size: 128 });
      writeFile(
        path.join(src, 'train/dog/truncated.jpg'),
        full.subarray(0, Math.floor(full.length / 2)),
      );
      writeFile(path.join(src, 'train/dog/notes.jpg'), 'this is text, not a JPEG\n');
      writeFile(path.join(src, 'val/wild/empty.jpg'), Buffer.alloc(0));
      writeFile(path.join(src, 'val/wild/ok.jpg'), await makeImage(4));
      writeFile(path.join(src, 'extras/stray.jpg'), await makeImage(5));
      writeFile(path.join(src, 'train/.DS_Store'), 'junk');
      const gif = await sharp({ create: { width: 8, height: 8, channels: 3, background: 'red' } })
        .gif()
        .toBuffer();
      writeFile(path.join(src, 'val/wild/anim.gif'), gif);

      const ws = await workspace();
      const report = await ingestImages(ws, { source: src });
      expect(report.layout).toBe('split/label');
      expect(report.added).toBe(3);
      const reasons = Object.fromEntries(
        report.rejected.map((r) => [path.basename(r.path), r.reason]),
      );
      expect(reasons).toEqual({
        'truncated.jpg': 'unreadable',
        'notes.jpg': 'unreadable',
        'empty.jpg': 'empty',
        'stray.jpg': 'unknown-folder',
        'anim.gif': 'unsupported-format',
      });
      expect(report.rejected.find((r) => r.path.endsWith('truncated.jpg'))?.detail).toMatch(
        /corrupt|premature/,
      );
      expect(report.duplicates).toHaveLength(1);
      expect(
        [report.duplicates[0]!.path, report.duplicates[0]!.sameAs]
          .map((p) => path.basename(p))
          .sort(),
      ).toEqual(['copy-of-good.jpg', 'good.jpg']);
      expect(report.ignored).toBe(1);
      expect(await countImages(ws.database.db)).toEqual([
        { label: 'cat', split: 'train', count: 1 },
        { label: 'dog', split: 'train', count: 1 },
        { label: 'wild', split: 'val', count: 1 },
      ]);
      const pngRow = await ws.database.db
        .selectFrom('images')
        .selectAll()
        .where('format', '=', 'png')
        .executeTakeFirstOrThrow();
      expect(pngRow.uri).toMatch(/^blob:[0-9a-f]{2}\/[0-9a-f]{2}\/[0-9a-f]{64}\.png$/);

      const again = await ingestImages(ws, { source: src });
      expect(again.added).toBe(0);
      expect(again.unchanged).toBe(3);
      expect(await ws.database.db.selectFrom('images').select('id').execute()).toHaveLength(3);
      expect(
        fs
          .readdirSync(path.join(ws.dataDir, 'blobs'), { recursive: true })
          .filter((f) => String(f).includes('.')),
      ).toHaveLength(3);
    });

    it('records files in place with --reference, copying nothing', async () => {
      const src = folder();
      const file = writeFile(path.join(src, 'cat/a.jpg'), await makeImage(7));
      const ws = await workspace();
      const report = await ingestImages(ws, { source: src, reference: true, valFraction: 0 });
      expect(report.added).toBe(1);
      const row = await ws.database.db.selectFrom('images').selectAll().executeTakeFirstOrThrow();
      expect(row.uri).toBe(pathToFileURL(file).href);
      expect(row.split).toBe('train');
      expect(fs.existsSync(path.join(ws.dataDir, 'blobs'))).toBe(false);
      expect((await ws.blobs.get(row.uri)).equals(fs.readFileSync(file))).toBe(true);
    });

    it('reads a CSV manifest with quoted paths, splits, a label map and bad rows', async () => {
      const src = folder();
      writeFile(path.join(src, 'imgs/a, one.jpg'), await makeImage(11));
      writeFile(path.join(src, 'imgs/b.jpg'), await makeImage(12));
      writeFile(path.join(src, 'imgs/c.jpg'), await makeImage(13));
      const manifest = writeFile(
        path.join(src, 'manifest.csv'),
        [
          'path,label,split',
          '"imgs/a, one.jpg",Wild Animals,train',
          'imgs/b.jpg,CAT,val',
          'imgs/c.jpg,cat,holdout',
          'imgs/missing.jpg,cat,train',
          ',cat,train',
        ].join('\n'),
      );
      const ws = await workspace();
      const report = await ingestImages(ws, {
        source: manifest,
        labelMap: parseLabelMap(['wild-animals=wild']),
      });
      expect(report.layout).toBe('manifest');
      expect(report.added).toBe(2);
      expect(report.rejected.map((r) => r.reason).sort()).toEqual([
        'manifest-row',
        'manifest-row',
        'not-found',
      ]);
      expect(report.rejected.find((r) => r.detail.includes('holdout'))?.path).toBe(`${manifest}:4`);
      expect(await countImages(ws.database.db)).toEqual([
        { label: 'cat', split: 'val', count: 1 },
        { label: 'wild', split: 'train', count: 1 },
      ]);
    });

    it('fails clearly on a source that does not exist or a manifest without the columns', async () => {
      const ws = await workspace();
      await expect(ingestImages(ws, { source: '/no/such/folder' })).rejects.toMatchObject({
        code: 'INGEST_SOURCE_NOT_FOUND',
      });
      const bad = writeFile(path.join(folder(), 'm.csv'), 'file,class\na.jpg,cat\n');
      await expect(ingestImages(ws, { source: bad })).rejects.toMatchObject({
        code: 'INGEST_MANIFEST_INVALID',
        message: expect.stringContaining('path and label'),
      });
    });

    it('rejects images over the pixel limit without decoding them', async () => {
      const src = folder();
      writeFile(
        path.join(src, 'cat/big.png'),
        await makeImage(21, { width: 400, height: 300, format: 'png' }),
      );
      const ws = await workspace();
      const report = await ingestImages(ws, { source: src, maxPixels: 100_000 });
      expect(report.rejected).toMatchObject([
        { reason: 'too-large', detail: expect.stringContaining('400×300') },
      ]);
    });

    it('splits by content hash: stable, near the asked fraction', () => {
      const shas = Array.from({ length: 2000 }, (_, i) => i.toString(16).padStart(64, '0'));
      const val = shas.filter((s) => splitFor(s, 0.2) === 'val').length;
      expect(val / shas.length).toBeGreaterThan(0.17);
      expect(val / shas.length).toBeLessThan(0.23);
      expect(shas.map((s) => splitFor(s, 0.2))).toEqual(shas.map((s) => splitFor(s, 0.2)));
    });

    it('pages through images by label and split with opaque cursors', async () => {
      const ws = await workspace();
      await ingestImages(ws, { source: AFHQ_MINI });
      const seen: number[] = [];
      let after: string | null = null;
      do {
        const page = await listImages(ws.database.db, { label: 'cat', first: 7, after });
        seen.push(...page.images.map((i) => i.id));
        expect(page.images.every((i) => i.label === 'cat')).toBe(true);
        after = page.endCursor;
      } while (after);
      expect(seen).toHaveLength(40);
      expect([...seen].sort((a, b) => a - b)).toEqual(seen);
    });
  });
});
