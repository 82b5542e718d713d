import { sql, type Kysely } from 'kysely';
import { autoId, columnTypes } from './dialect.js';

// Frozen in time: imports nothing from the app, whatever the tables become later.
// One row per served prediction. The upload's bytes are kept in the blob store (blob_uri)
// so that feedback can add the very image that was judged to the data set.
export async function up(db: Kysely<any>): Promise<void> {
  const t = columnTypes(db);
  await db.schema
    .createTable('predictions')
    .addColumn('id', 'integer', autoId(db))
    // The version that answered, by name and number: kept after the version is deleted.
    .addColumn('model_name', 'text', (c) => c.notNull())
    .addColumn('model_version', 'integer', (c) => c.notNull())
    .addColumn('label', 'text', (c) => c.notNull())
    .addColumn('confidence', t.double, (c) => c.notNull())
    .addColumn('uncertain', 'integer', (c) => c.notNull().check(sql`uncertain in (0, 1)`))
    // JSON array of {label, p}, most probable first: every class, whatever topK was asked.
    .addColumn('probabilities', 'text', (c) => c.notNull())
    .addColumn('latency_ms', t.double, (c) => c.notNull())
    .addColumn('image_sha256', 'text', (c) => c.notNull())
    .addColumn('blob_uri', 'text', (c) => c.notNull())
    .addColumn('created_at', t.millis, (c) => c.notNull())
    .addColumn('feedback_label', 'text')
    .addColumn('feedback_at', t.millis)
    .addColumn('feedback_image_id', 'integer', (c) =>
      c.references('images.id').onDelete('set null'),
    )
    .execute();
  await db.schema
    .createIndex('predictions_model')
    .on('predictions')
    .columns(['model_name', 'model_version', 'created_at'])
    .execute();
  // Blob sweeps and image deletes ask whether a prediction still names a blob.
  await db.schema.createIndex('predictions_blob').on('predictions').column('blob_uri').execute();
}

export async function down(db: Kysely<any>): Promise<void> {
  await db.schema.dropTable('predictions').execute();
}
