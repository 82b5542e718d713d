import { sql, type Kysely } from 'kysely';
import { columnTypes } from './dialect.js';

// Frozen in time: imports nothing from the app, whatever the tables become later.
// Evaluations of model versions on a data set (a folder, a manifest or a split of the
// catalogue), as mlflow.evaluate records them: metrics, the files left out, the worst errors.
// Column types from ./dialect.js (see README.md here): the same migration on both backends.
export async function up(db: Kysely<any>): Promise<void> {
  const t = columnTypes(db);
  await db.schema
    .createTable('model_evaluations')
    // 32 hex digits, as run ids: no autoincrement, which the dialects spell differently.
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('model_version_id', 'integer', (c) =>
      c.notNull().references('model_versions.id').onDelete('cascade'),
    )
    .addColumn('status', 'text', (c) =>
      c.notNull().check(sql`status in ('RUNNING', 'FINISHED', 'FAILED', 'KILLED')`),
    )
    .addColumn('dataset_kind', 'text', (c) =>
      c.notNull().check(sql`dataset_kind in ('folder', 'manifest', 'split')`),
    )
    // The folder's or manifest's absolute path, or the split's name.
    .addColumn('dataset_source', 'text', (c) => c.notNull())
    // Images scored; unreadable files and unknown labels are not counted.
    .addColumn('image_count', 'integer', (c) => c.notNull().defaultTo(0))
    // sha256 over the sorted (image sha256, label) pairs scored: equal means the same data.
    .addColumn('dataset_sha256', 'text')
    // JSON: accuracy, per-class scores, confusion matrix, calibration. Null until finished.
    .addColumn('metrics', 'text')
    // JSON arrays: [{ path, reason, detail }] and [{ label, count }].
    .addColumn('unreadable', 'text', (c) => c.notNull().defaultTo('[]'))
    .addColumn('unknown_labels', 'text', (c) => c.notNull().defaultTo('[]'))
    .addColumn('confusion_matrix_uri', 'text')
    .addColumn('done', 'integer', (c) => c.notNull().defaultTo(0))
    .addColumn('total', 'integer', (c) => c.notNull().defaultTo(0))
    .addColumn('error', 'text')
    .addColumn('created_by', 'text')
    // The process evaluating, so one killed mid-way is told from one still running.
    .addColumn('owner_pid', 'integer')
    .addColumn('hostname', 'text')
    .addColumn('created_at', t.millis, (c) => c.notNull())
    .addColumn('updated_at', t.millis, (c) => c.notNull())
    .addColumn('finished_at', t.millis)
    .execute();
  await db.schema
    .createIndex('model_evaluations_version')
    .on('model_evaluations')
    .columns(['model_version_id', 'created_at'])
    .execute();
  await db.schema
    .createIndex('model_evaluations_dataset')
    .on('model_evaluations')
    .column('dataset_sha256')
    .execute();
  // The highest-confidence wrong predictions, with their image in the blob store.
  await db.schema
    .createTable('model_evaluation_errors')
    .addColumn('evaluation_id', 'text', (c) =>
      c.notNull().references('model_evaluations.id').onDelete('cascade'),
    )
    .addColumn('rank', 'integer', (c) => c.notNull().check(sql`rank >= 1`))
    // The file's path, or the catalogue image's source path.
    .addColumn('source', 'text', (c) => c.notNull())
    // The catalogue image, when the data was a split; kept (unlinked) if the image goes.
    .addColumn('image_id', 'integer', (c) => c.references('images.id').onDelete('set null'))
    .addColumn('blob_uri', 'text', (c) => c.notNull())
    .addColumn('sha256', 'text', (c) => c.notNull())
    .addColumn('format', 'text', (c) => c.notNull())
    .addColumn('true_label', 'text', (c) => c.notNull())
    .addColumn('predicted_label', 'text', (c) => c.notNull())
    .addColumn('confidence', t.double, (c) => c.notNull())
    // JSON array of probabilities in the model's label order.
    .addColumn('probabilities', 'text', (c) => c.notNull())
    .addPrimaryKeyConstraint('model_evaluation_errors_pk', ['evaluation_id', 'rank'])
    .execute();
  // Blob sweeps and image deletes ask whether an evaluation still names a blob.
  await db.schema
    .createIndex('model_evaluation_errors_blob')
    .on('model_evaluation_errors')
    .column('blob_uri')
    .execute();
}

export async function down(db: Kysely<any>): Promise<void> {
  await db.schema.dropTable('model_evaluation_errors').execute();
  await db.schema.dropTable('model_evaluations').execute();
}
