import { createHash } from 'node:crypto';
import { isBlobNamed } from './blob-references.js';
import type { BlobStore } from './blob-store.js';
import type { OpenDatabase } from './database.js';
import { MenagerieError } from '../core/errors.js';
import {
  encodeCursor,
  findImageById,
  findImageBySha256,
  insertImages,
  listImages,
  type CatalogImage,
} from './image-catalog.js';
import { IMAGE_FORMATS, probeImage } from './image-probe.js';
import { splitFor } from './ingest/ingest.js';
import { normaliseLabel } from './label-name.js';
import { SPLITS, type Split } from './tables.js';

export interface ImageFilter {
  /** A label name; normalised like ingest's folder names (`'Cat'` finds `cat`). */
  label?: string;
  split?: Split;
}

export interface ImageListPage {
  images: CatalogImage[];
  hasNextPage: boolean;
  /** Images matching the filter across all pages. */
  totalCount: number;
}

export type SplitCounts = Record<Split, number> & { total: number };

export interface LabelSummary {
  id: number;
  name: string;
  createdAt: number;
  counts: SplitCounts;
}

export interface ImageStats {
  totalCount: number;
  totalBytes: number;
  splits: SplitCounts;
  formats: { format: string; count: number }[];
  labelCount: number;
}

export interface AddImageResult {
  image: CatalogImage;
  /** The same bytes were already stored: `image` is the existing row, unchanged. */
  duplicate: boolean;
}

/**
 * What the API and the CLI do with single images: list, add one upload, relabel, delete.
 * Bytes are sniffed and fully decoded before anything is stored; the client's file name
 * and MIME type are never consulted.
 *
 * ```ts
 * const images = createImageService(workspace);
 * const { image, duplicate } = await images.add(await fs.readFile('cat.jpg'), { label: 'cat' });
 * await images.relabel(image.id, 'wild');
 * ```
 */
export interface ImageService {
  list(filter: ImageFilter & { first?: number; after?: string | null }): Promise<ImageListPage>;
  get(id: number): Promise<CatalogImage | undefined>;
  /** Throws IMAGE_EMPTY, IMAGE_UNREADABLE, IMAGE_UNSUPPORTED_FORMAT, IMAGE_TOO_LARGE, LABEL_INVALID. */
  add(bytes: Uint8Array, options: { label: string; split?: Split }): Promise<AddImageResult>;
  /** Throws IMAGE_NOT_FOUND or LABEL_INVALID. */
  relabel(id: number, label: string): Promise<CatalogImage>;
  /** Removes the row, then its blob when no row names it. Throws IMAGE_NOT_FOUND. */
  delete(id: number): Promise<CatalogImage>;
  /** Every label, with image counts per split (zeros included). */
  labels(): Promise<LabelSummary[]>;
  stats(): Promise<ImageStats>;
  /** The stored bytes of an image. Throws BLOB_NOT_FOUND. */
  bytes(image: CatalogImage): Promise<Buffer>;
}

export interface ImageServiceOptions {
  maxPixels?: number;
  /** Share of uploads without a split put in `val` (default 0.2), decided by content hash. */
  valFraction?: number;
}

export function createImageService(
  deps: { database: OpenDatabase; blobs: BlobStore },
  options: ImageServiceOptions = {},
): ImageService {
  const { db } = deps.database;
  // Adding and deleting the same bytes at once would otherwise let a delete remove the blob
  // a concurrent add has just found present and is about to point a row at.
  const locks = new Map<string, Promise<unknown>>();
  const withLock = async <T>(key: string, task: () => Promise<T>): Promise<T> => {
    const previous = locks.get(key) ?? Promise.resolve();
    const run = previous.then(task, task);
    const settled = run.catch(() => undefined);
    locks.set(key, settled);
    try {
      return await run;
    } finally {
      if (locks.get(key) === settled) locks.delete(key);
    }
  };

  const filtered = (filter: ImageFilter) => {
    let query = db.selectFrom('images').innerJoin('labels', 'labels.id', 'images.label_id');
    if (filter.label !== undefined)
      query = query.where('labels.name', '=', normaliseLabel(filter.label));
    if (filter.split !== undefined) query = query.where('images.split', '=', filter.split);
    return query;
  };

  const mustFind = async (id: number): Promise<CatalogImage> => {
    const image = await findImageById(db, id);
    if (!image) throw new MenagerieError('IMAGE_NOT_FOUND', `no image has id ${id}`);
    return image;
  };

  const splitCounts = (): SplitCounts => ({ train: 0, val: 0, test: 0, total: 0 });

  return {
    async list(filter) {
      const label = filter.label === undefined ? undefined : normaliseLabel(filter.label);
      const [page, count] = await Promise.all([
        listImages(db, { ...filter, label }),
        filtered(filter)
          .select((eb) => eb.fn.countAll<number>().as('n'))
          .executeTakeFirstOrThrow(),
      ]);
      return {
        images: page.images,
        hasNextPage: page.hasNextPage,
        totalCount: Number(count.n),
      };
    },

    get: (id) => findImageById(db, id),

    async add(bytes, { label, split }) {
      const name = normaliseLabel(label);
      const sha256 = createHash('sha256').update(bytes).digest('hex');
      return withLock(sha256, async () => {
        const existing = await findImageBySha256(db, sha256);
        if (existing) return { image: existing, duplicate: true };
        const info = await probeImage(bytes, { maxPixels: options.maxPixels });
        const uri = await deps.blobs.put(bytes, { sha256, ext: IMAGE_FORMATS[info.format] });
        const { inserted } = await insertImages(db, [
          {
            sha256,
            uri,
            label: name,
            split: split ?? splitFor(sha256, options.valFraction ?? 0.2),
            width: info.width,
            height: info.height,
            format: info.format,
            bytes: bytes.length,
            source_path: null,
            added_at: Date.now(),
          },
        ]);
        // Another process (an ingest) may have won the race: either way this row is the image.
        const image = await findImageBySha256(db, sha256);
        if (!image) throw new Error(`image ${sha256} vanished after insert`);
        return { image, duplicate: inserted === 0 };
      });
    },

    async relabel(id, label) {
      const name = normaliseLabel(label);
      await mustFind(id);
      await db.transaction().execute(async (trx) => {
        await trx
          .insertInto('labels')
          .values({ name, created_at: Date.now() })
          .onConflict((oc) => oc.column('name').doNothing())
          .execute();
        const { id: labelId } = await trx
          .selectFrom('labels')
          .select('id')
          .where('name', '=', name)
          .executeTakeFirstOrThrow();
        await trx.updateTable('images').set({ label_id: labelId }).where('id', '=', id).execute();
      });
      return mustFind(id);
    },

    async delete(id) {
      const image = await mustFind(id);
      return withLock(image.sha256, async () => {
        const result = await db.deleteFrom('images').where('id', '=', id).executeTakeFirst();
        if (Number(result.numDeletedRows) === 0) {
          throw new MenagerieError('IMAGE_NOT_FOUND', `no image has id ${id}`);
        }
        // A prediction or an evaluation's worst error may keep the same bytes.
        if (!(await isBlobNamed(db, image.uri))) await deps.blobs.delete(image.uri);
        return image;
      });
    },

    async labels() {
      const [labels, counts] = await Promise.all([
        db.selectFrom('labels').selectAll().orderBy('name').execute(),
        db
          .selectFrom('images')
          .select(['label_id', 'split', (eb) => eb.fn.countAll<number>().as('n')])
          .groupBy(['label_id', 'split'])
          .execute(),
      ]);
      const byId = new Map(
        labels.map((l) => [
          l.id,
          { id: l.id, name: l.name, createdAt: l.created_at, counts: splitCounts() },
        ]),
      );
      for (const row of counts) {
        const summary = byId.get(row.label_id);
        if (!summary || !SPLITS.includes(row.split)) continue;
        summary.counts[row.split] += Number(row.n);
        summary.counts.total += Number(row.n);
      }
      return [...byId.values()];
    },

    async stats() {
      const [bySplit, byFormat, labelCount] = await Promise.all([
        db
          .selectFrom('images')
          .select([
            'split',
            (eb) => eb.fn.countAll<number>().as('n'),
            (eb) => eb.fn.sum<number>('bytes').as('bytes'),
          ])
          .groupBy('split')
          .execute(),
        db
          .selectFrom('images')
          .select(['format', (eb) => eb.fn.countAll<number>().as('n')])
          .groupBy('format')
          .orderBy('format')
          .execute(),
        db
          .selectFrom('images')
          .select((eb) => eb.fn.count<number>('label_id').distinct().as('n'))
          .executeTakeFirstOrThrow(),
      ]);
      const splits = splitCounts();
      let totalBytes = 0;
      for (const row of bySplit) {
        splits[row.split] = Number(row.n);
        splits.total += Number(row.n);
        totalBytes += Number(row.bytes ?? 0);
      }
      return {
        totalCount: splits.total,
        totalBytes,
        splits,
        formats: byFormat.map((r) => ({ format: r.format, count: Number(r.n) })),
        labelCount: Number(labelCount.n),
      };
    },

    bytes: (image) => deps.blobs.get(image.uri),
  };
}

/** The cursor an image has in `list` pages. */
export const imageCursor = (image: { id: number }): string => encodeCursor(image.id);
