import { sql, type Kysely } from 'kysely';
import { excerpt, MenagerieError } from '../core/errors.js';
import type { Database, ImageRow, NewImage, Split } from './tables.js';

/** An image row with its label's name. */
export type CatalogImage = ImageRow & { label: string };

export interface ImagePage {
  images: CatalogImage[];
  /** Pass as `after` for the next page; null on the last page. */
  endCursor: string | null;
  hasNextPage: boolean;
}

function withLabel(db: Kysely<Database>) {
  return db
    .selectFrom('images')
    .innerJoin('labels', 'labels.id', 'images.label_id')
    .selectAll('images')
    .select('labels.name as label');
}

/** Opaque cursors: clients page with them and never build one by hand. */
export function encodeCursor(id: number): string {
  return Buffer.from(`image:${id}`).toString('base64url');
}

export function decodeCursor(cursor: string): number {
  const match = /^image:(\d{1,15})$/.exec(Buffer.from(cursor, 'base64url').toString());
  if (!match)
    throw new MenagerieError(
      'CURSOR_INVALID',
      `'${excerpt(cursor)}' is not a cursor this server issued`,
    );
  return Number(match[1]);
}

/**
 * Images in id order, filtered by label and split, a page at a time (keyset paging: stable
 * while rows are added, and as fast on page 500 as on page 1).
 *
 * ```ts
 * let page = await listImages(db, { label: 'cat', split: 'train', first: 50 });
 * page = await listImages(db, { label: 'cat', split: 'train', first: 50, after: page.endCursor! });
 * ```
 */
export async function listImages(
  db: Kysely<Database>,
  filter: { label?: string; split?: Split; first?: number; after?: string | null },
): Promise<ImagePage> {
  const first = Math.min(Math.max(filter.first ?? 50, 1), 1000);
  let query = withLabel(db)
    .orderBy('images.id')
    .limit(first + 1);
  if (filter.label !== undefined) query = query.where('labels.name', '=', filter.label);
  if (filter.split !== undefined) query = query.where('images.split', '=', filter.split);
  if (filter.after) query = query.where('images.id', '>', decodeCursor(filter.after));
  const rows = await query.execute();
  const images = rows.slice(0, first);
  const last = images.at(-1);
  return {
    images,
    hasNextPage: rows.length > first,
    endCursor: last && rows.length > first ? encodeCursor(last.id) : null,
  };
}

export interface LabelSplitCount {
  label: string;
  split: Split;
  count: number;
}

/** How many images each label has in each split; labels without images are left out. */
export async function countImages(db: Kysely<Database>): Promise<LabelSplitCount[]> {
  const rows = await db
    .selectFrom('images')
    .innerJoin('labels', 'labels.id', 'images.label_id')
    .select(['labels.name as label', 'images.split', (eb) => eb.fn.countAll<number>().as('count')])
    .groupBy(['labels.name', 'images.split'])
    .orderBy('labels.name')
    .orderBy('images.split')
    .execute();
  return rows.map((r) => ({ label: r.label, split: r.split, count: Number(r.count) }));
}

/**
 * `n` images of a label picked at random: what the reference project showed as "similar
 * images", and the fallback while embeddings are not ready.
 */
export async function sampleImages(
  db: Kysely<Database>,
  options: { label: string; n: number; excludeIds?: readonly number[] },
): Promise<CatalogImage[]> {
  let query = withLabel(db)
    .where('labels.name', '=', options.label)
    .orderBy(sql`random()`)
    .limit(Math.max(0, options.n));
  if (options.excludeIds?.length) query = query.where('images.id', 'not in', options.excludeIds);
  return query.execute();
}

export async function findImageById(
  db: Kysely<Database>,
  id: number,
): Promise<CatalogImage | undefined> {
  return withLabel(db).where('images.id', '=', id).executeTakeFirst();
}

export async function findImageBySha256(
  db: Kysely<Database>,
  sha256: string,
): Promise<CatalogImage | undefined> {
  return withLabel(db).where('images.sha256', '=', sha256.toLowerCase()).executeTakeFirst();
}

/** Rows per INSERT: 11 values each, well under SQLite's and PostgreSQL's parameter limits. */
const INSERT_SLICE = 500;

/**
 * Inserts images in one transaction, creating their labels as needed. Rows whose sha256 is
 * already stored (another writer got there first) are skipped and returned.
 */
export async function insertImages(
  db: Kysely<Database>,
  rows: readonly (Omit<NewImage, 'label_id'> & { label: string })[],
): Promise<{ inserted: number; skippedSha256: string[] }> {
  if (rows.length === 0) return { inserted: 0, skippedSha256: [] };
  return db.transaction().execute(async (trx) => {
    const names = [...new Set(rows.map((r) => r.label))];
    const now = Date.now();
    await trx
      .insertInto('labels')
      .values(names.map((name) => ({ name, created_at: now })))
      .onConflict((oc) => oc.column('name').doNothing())
      .execute();
    const labels = await trx
      .selectFrom('labels')
      .select(['id', 'name'])
      .where('name', 'in', names)
      .execute();
    const idOf = new Map(labels.map((l) => [l.name, l.id]));
    // One multi-row statement per slice, not one per row: building and running a statement
    // per row cost ingest more main-thread time than hashing the file did.
    const returned = new Map<string, number>();
    for (let start = 0; start < rows.length; start += INSERT_SLICE) {
      const stored = await trx
        .insertInto('images')
        .values(
          rows
            .slice(start, start + INSERT_SLICE)
            .map(({ label, ...row }) => ({ ...row, label_id: idOf.get(label)! })),
        )
        .onConflict((oc) => oc.column('sha256').doNothing())
        .returning('sha256')
        .execute();
      for (const { sha256 } of stored) returned.set(sha256, (returned.get(sha256) ?? 0) + 1);
    }
    // Rows come back for what was inserted; of two rows with the same bytes the first wins.
    const skippedSha256: string[] = [];
    let inserted = 0;
    for (const { sha256 } of rows) {
      const left = returned.get(sha256) ?? 0;
      if (left > 0) {
        returned.set(sha256, left - 1);
        inserted++;
      } else skippedSha256.push(sha256);
    }
    return { inserted, skippedSha256 };
  });
}
