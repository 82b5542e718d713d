import { sql, type Kysely } from 'kysely';
import { autoId, columnTypes } from './dialect.js';

// Frozen in time: imports nothing from the app, whatever the tables become later.
// The vectors themselves live in sqlite-vec vec0 tables `embeddings_<model_version_id>`,
// created when a job starts: vec0 needs the embedding's dimension, known only from the model.
export async function up(db: Kysely<any>): Promise<void> {
  const t = columnTypes(db);
  await db.schema
    .createTable('embedding_jobs')
    .addColumn('id', 'integer', autoId(db))
    // One job row per version: a rerun resumes in the same row and the same vec0 table.
    .addColumn('model_version_id', 'integer', (c) =>
      c.notNull().unique().references('model_versions.id').onDelete('cascade'),
    )
    .addColumn('status', 'text', (c) =>
      c.notNull().check(sql`status in ('PENDING', 'RUNNING', 'READY', 'FAILED')`),
    )
    .addColumn('dimension', 'integer')
    .addColumn('done', 'integer', (c) => c.notNull().defaultTo(0))
    .addColumn('total', 'integer', (c) => c.notNull().defaultTo(0))
    .addColumn('error', 'text')
    // The child process computing it, so a killed job can be told from a live one.
    .addColumn('pid', 'integer')
    .addColumn('hostname', 'text')
    .addColumn('started_at', t.millis)
    .addColumn('finished_at', t.millis)
    .addColumn('updated_at', t.millis, (c) => c.notNull())
    .execute();
  await db.schema
    .createIndex('embedding_jobs_status')
    .on('embedding_jobs')
    .column('status')
    .execute();
}

export async function down(db: Kysely<any>): Promise<void> {
  await db.schema.dropTable('embedding_jobs').execute();
}
