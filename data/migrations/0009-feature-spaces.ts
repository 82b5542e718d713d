import { sql, type Kysely } from 'kysely';
import { autoId, columnTypes } from './dialect.js';

// Frozen in time: imports nothing from the app, whatever the tables become later.
// The catalogue's images in a pretrained backbone's feature space, for similar images
// whichever classifier is champion: one row per space (backbone, weights, dimensions), the
// projection from the backbone's features to the space (a blob: mean and components), and
// the job that fills the space, as embedding_jobs does for a model version's space.
export async function up(db: Kysely<any>): Promise<void> {
  const t = columnTypes(db);
  await db.schema
    .createTable('feature_spaces')
    .addColumn('id', 'integer', autoId(db))
    .addColumn('space', 'text', (c) => c.notNull().unique())
    .addColumn('backbone', 'text', (c) => c.notNull())
    .addColumn('weights_sha256', 'text', (c) => c.notNull())
    // The backbone's feature length, and the space's after projection.
    .addColumn('features', 'integer', (c) => c.notNull())
    .addColumn('dimension', 'integer', (c) => c.notNull())
    .addColumn('projection_uri', 'text')
    .addColumn('status', 'text', (c) =>
      c.notNull().check(sql`status in ('PENDING', 'RUNNING', 'READY', 'FAILED')`),
    )
    .addColumn('done', 'integer', (c) => c.notNull().defaultTo(0))
    .addColumn('total', 'integer', (c) => c.notNull().defaultTo(0))
    .addColumn('error', 'text')
    .addColumn('pid', 'integer')
    .addColumn('hostname', 'text')
    .addColumn('started_at', t.millis)
    .addColumn('finished_at', t.millis)
    .addColumn('updated_at', t.millis, (c) => c.notNull())
    .execute();
}

export async function down(db: Kysely<any>): Promise<void> {
  await db.schema.dropTable('feature_spaces').execute();
}
