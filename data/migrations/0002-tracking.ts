import { sql, type Kysely } from 'kysely';
import { autoId, columnTypes } from './dialect.js';

// Frozen in time: imports nothing from the app, whatever the tables become later.
export async function up(db: Kysely<any>): Promise<void> {
  const t = columnTypes(db);
  await db.schema
    .createTable('experiments')
    .addColumn('id', 'integer', autoId(db))
    .addColumn('name', 'text', (c) => c.notNull().unique())
    .addColumn('description', 'text')
    .addColumn('lifecycle', 'text', (c) =>
      c
        .notNull()
        .defaultTo('active')
        .check(sql`lifecycle in ('active', 'deleted')`),
    )
    .addColumn('created_at', t.millis, (c) => c.notNull())
    .addColumn('updated_at', t.millis, (c) => c.notNull())
    .execute();
  await db.schema
    .createTable('experiment_tags')
    .addColumn('experiment_id', 'integer', (c) =>
      c.notNull().references('experiments.id').onDelete('cascade'),
    )
    .addColumn('key', 'text', (c) => c.notNull())
    .addColumn('value', 'text', (c) => c.notNull())
    .addPrimaryKeyConstraint('experiment_tags_pk', ['experiment_id', 'key'])
    .execute();
  await db.schema
    .createTable('runs')
    // 32 lowercase hex digits, as MLflow's run_id.
    .addColumn('id', 'text', (c) => c.primaryKey().check(sql`length(id) = 32`))
    .addColumn('experiment_id', 'integer', (c) =>
      c.notNull().references('experiments.id').onDelete('cascade'),
    )
    .addColumn('name', 'text', (c) => c.notNull())
    .addColumn('status', 'text', (c) =>
      c.notNull().check(sql`status in ('RUNNING', 'FINISHED', 'FAILED', 'KILLED')`),
    )
    .addColumn('start_time', t.millis, (c) => c.notNull())
    .addColumn('end_time', t.millis)
    .addColumn('parent_run_id', 'text', (c) => c.references('runs.id').onDelete('set null'))
    .addColumn('artifact_uri', 'text', (c) => c.notNull())
    .addColumn('lifecycle', 'text', (c) =>
      c
        .notNull()
        .defaultTo('active')
        .check(sql`lifecycle in ('active', 'deleted')`),
    )
    // Who owns a RUNNING run, so a later start can tell a crashed owner from a live one.
    .addColumn('owner_pid', 'integer')
    .addColumn('hostname', 'text')
    .addColumn('heartbeat_at', t.millis)
    .execute();
  await db.schema
    .createIndex('runs_experiment_start')
    .on('runs')
    .columns(['experiment_id', 'start_time'])
    .execute();
  await db.schema.createIndex('runs_status').on('runs').column('status').execute();
  await db.schema.createIndex('runs_parent').on('runs').column('parent_run_id').execute();
  await db.schema
    .createTable('params')
    .addColumn('run_id', 'text', (c) => c.notNull().references('runs.id').onDelete('cascade'))
    .addColumn('key', 'text', (c) => c.notNull())
    .addColumn('value', 'text', (c) => c.notNull())
    .addPrimaryKeyConstraint('params_pk', ['run_id', 'key'])
    .execute();
  // Full history. SQLite has no NaN (it binds NaN as NULL), so a null value means NaN.
  await db.schema
    .createTable('metrics')
    .addColumn('id', 'integer', autoId(db))
    .addColumn('run_id', 'text', (c) => c.notNull().references('runs.id').onDelete('cascade'))
    .addColumn('key', 'text', (c) => c.notNull())
    .addColumn('value', t.double)
    .addColumn('step', t.int64, (c) => c.notNull())
    .addColumn('timestamp', t.millis, (c) => c.notNull())
    .execute();
  await db.schema
    .createIndex('metrics_run_key_step')
    .on('metrics')
    .columns(['run_id', 'key', 'step'])
    .execute();
  // One row per (run, key): the value at the highest step, kept by the writer, so search
  // filters and sorts without scanning the history.
  await db.schema
    .createTable('latest_metrics')
    .addColumn('run_id', 'text', (c) => c.notNull().references('runs.id').onDelete('cascade'))
    .addColumn('key', 'text', (c) => c.notNull())
    .addColumn('value', t.double)
    .addColumn('step', t.int64, (c) => c.notNull())
    .addColumn('timestamp', t.millis, (c) => c.notNull())
    .addPrimaryKeyConstraint('latest_metrics_pk', ['run_id', 'key'])
    .execute();
  await db.schema
    .createIndex('latest_metrics_key_value')
    .on('latest_metrics')
    .columns(['key', 'value'])
    .execute();
  await db.schema
    .createTable('run_tags')
    .addColumn('run_id', 'text', (c) => c.notNull().references('runs.id').onDelete('cascade'))
    .addColumn('key', 'text', (c) => c.notNull())
    .addColumn('value', 'text', (c) => c.notNull())
    .addPrimaryKeyConstraint('run_tags_pk', ['run_id', 'key'])
    .execute();
}

export async function down(db: Kysely<any>): Promise<void> {
  for (const table of [
    'run_tags',
    'latest_metrics',
    'metrics',
    'params',
    'runs',
    'experiment_tags',
    'experiments',
  ])
    await db.schema.dropTable(table).execute();
}
