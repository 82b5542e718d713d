import { sql, type Kysely } from 'kysely';
import { autoId, columnTypes, isPostgres } from './dialect.js';

// Frozen in time: imports nothing from the app, whatever the tables become later.
// A prediction's upload is kept for feedback only under a retention limit, and never by a
// read-only server: `blob_uri` is null when the upload was not kept or has expired, and
// `upload_bytes` records its size for the size limit (null for rows written before).
export async function up(db: Kysely<any>): Promise<void> {
  if (isPostgres(db)) {
    // PostgreSQL drops a NOT NULL in place; SQLite cannot, so it copies the table below.
    await sql`alter table predictions alter column blob_uri drop not null`.execute(db);
    await db.schema.alterTable('predictions').addColumn('upload_bytes', 'integer').execute();
  } else {
    const t = columnTypes(db);
    await db.schema
      .createTable('predictions_new')
      .addColumn('id', 'integer', autoId(db))
      .addColumn('model_name', 'text', (c) => c.notNull())
      .addColumn('model_version', 'integer', (c) => c.notNull())
      .addColumn('label', 'text', (c) => c.notNull())
      .addColumn('confidence', t.double, (c) => c.notNull())
      .addColumn('uncertain', 'integer', (c) => c.notNull().check(sql`uncertain in (0, 1)`))
      .addColumn('probabilities', 'text', (c) => c.notNull())
      .addColumn('latency_ms', t.double, (c) => c.notNull())
      .addColumn('image_sha256', 'text', (c) => c.notNull())
      .addColumn('blob_uri', 'text')
      .addColumn('created_at', t.millis, (c) => c.notNull())
      .addColumn('feedback_label', 'text')
      .addColumn('feedback_at', t.millis)
      .addColumn('feedback_image_id', 'integer', (c) =>
        c.references('images.id').onDelete('set null'),
      )
      .addColumn('upload_bytes', 'integer')
      .execute();
    await sql`insert into predictions_new (id, model_name, model_version, label, confidence,
      uncertain, probabilities, latency_ms, image_sha256, blob_uri, created_at, feedback_label,
      feedback_at, feedback_image_id)
      select id, model_name, model_version, label, confidence, uncertain, probabilities,
      latency_ms, image_sha256, blob_uri, created_at, feedback_label, feedback_at,
      feedback_image_id from predictions`.execute(db);
    await db.schema.dropTable('predictions').execute();
    await db.schema.alterTable('predictions_new').renameTo('predictions').execute();
    await db.schema
      .createIndex('predictions_model')
      .on('predictions')
      .columns(['model_name', 'model_version', 'created_at'])
      .execute();
    await db.schema.createIndex('predictions_blob').on('predictions').column('blob_uri').execute();
  }
}

export async function down(db: Kysely<any>): Promise<void> {
  // blob_uri stays nullable: rows whose upload expired have nothing to put back.
  await db.schema.alterTable('predictions').dropColumn('upload_bytes').execute();
}
