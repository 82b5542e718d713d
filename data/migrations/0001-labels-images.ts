import { sql, type Kysely } from 'kysely';
import { autoId, columnTypes } from './dialect.js';

// Frozen in time: imports nothing from the app, whatever the tables become later.
export async function up(db: Kysely<any>): Promise<void> {
  const t = columnTypes(db);
  await db.schema
    .createTable('labels')
    .addColumn('id', 'integer', autoId(db))
    .addColumn('name', 'text', (c) => c.notNull().unique())
    .addColumn('created_at', t.millis, (c) => c.notNull())
    .execute();
  await db.schema
    .createTable('images')
    .addColumn('id', 'integer', autoId(db))
    .addColumn('sha256', 'text', (c) => c.notNull().unique())
    .addColumn('uri', 'text', (c) => c.notNull())
    .addColumn('label_id', 'integer', (c) => c.notNull().references('labels.id'))
    .addColumn('split', 'text', (c) => c.notNull().check(sql`split in ('train', 'val', 'test')`))
    .addColumn('width', 'integer', (c) => c.notNull())
    .addColumn('height', 'integer', (c) => c.notNull())
    .addColumn('format', 'text', (c) => c.notNull())
    .addColumn('bytes', 'integer', (c) => c.notNull())
    .addColumn('source_path', 'text')
    .addColumn('added_at', t.millis, (c) => c.notNull())
    .execute();
  // Paging by (label, split) walks id order; the second index serves split-only filters.
  await db.schema
    .createIndex('images_label_split_id')
    .on('images')
    .columns(['label_id', 'split', 'id'])
    .execute();
  await db.schema.createIndex('images_split_id').on('images').columns(['split', 'id']).execute();
  await db.schema.createIndex('images_source_path').on('images').column('source_path').execute();
}

export async function down(db: Kysely<any>): Promise<void> {
  await db.schema.dropTable('images').execute();
  await db.schema.dropTable('labels').execute();
}
