import { sql, type Kysely } from 'kysely';
import { autoId, columnTypes } from './dialect.js';

// Frozen in time: imports nothing from the app, whatever the tables become later.
export async function up(db: Kysely<any>): Promise<void> {
  const t = columnTypes(db);
  await db.schema
    .createTable('registered_models')
    .addColumn('id', 'integer', autoId(db))
    .addColumn('name', 'text', (c) => c.notNull().unique())
    .addColumn('description', 'text')
    // Highest version number ever issued: numbers of deleted versions are never reused.
    .addColumn('last_version', 'integer', (c) => c.notNull().defaultTo(0))
    .addColumn('created_at', t.millis, (c) => c.notNull())
    .addColumn('updated_at', t.millis, (c) => c.notNull())
    .execute();
  await db.schema
    .createTable('registered_model_tags')
    .addColumn('model_id', 'integer', (c) =>
      c.notNull().references('registered_models.id').onDelete('cascade'),
    )
    .addColumn('key', 'text', (c) => c.notNull())
    .addColumn('value', 'text', (c) => c.notNull())
    .addPrimaryKeyConstraint('registered_model_tags_pk', ['model_id', 'key'])
    .execute();
  await db.schema
    .createTable('model_versions')
    .addColumn('id', 'integer', autoId(db))
    .addColumn('model_id', 'integer', (c) =>
      c.notNull().references('registered_models.id').onDelete('cascade'),
    )
    .addColumn('version', 'integer', (c) => c.notNull().check(sql`version >= 1`))
    // No foreign key: a version outlives its run, as in MLflow.
    .addColumn('run_id', 'text')
    .addColumn('source', 'text', (c) => c.notNull())
    .addColumn('plugin', 'text', (c) => c.notNull())
    .addColumn('plugin_version', 'text')
    .addColumn('input_spec', 'text', (c) => c.notNull())
    .addColumn('labels', 'text', (c) => c.notNull())
    .addColumn('metrics', 'text', (c) => c.notNull().defaultTo('{}'))
    .addColumn('status', 'text', (c) =>
      c.notNull().check(sql`status in ('PENDING', 'READY', 'FAILED')`),
    )
    .addColumn('status_message', 'text')
    .addColumn('stage', 'text', (c) =>
      c
        .notNull()
        .defaultTo('None')
        .check(sql`stage in ('None', 'Staging', 'Production', 'Archived')`),
    )
    .addColumn('description', 'text')
    .addColumn('created_at', t.millis, (c) => c.notNull())
    .addColumn('updated_at', t.millis, (c) => c.notNull())
    .addColumn('created_by', 'text')
    .addUniqueConstraint('model_versions_model_version', ['model_id', 'version'])
    .execute();
  await db.schema
    .createIndex('model_versions_model_stage')
    .on('model_versions')
    .columns(['model_id', 'stage'])
    .execute();
  await db.schema.createIndex('model_versions_run').on('model_versions').column('run_id').execute();
  await db.schema
    .createTable('model_version_tags')
    .addColumn('version_id', 'integer', (c) =>
      c.notNull().references('model_versions.id').onDelete('cascade'),
    )
    .addColumn('key', 'text', (c) => c.notNull())
    .addColumn('value', 'text', (c) => c.notNull())
    .addPrimaryKeyConstraint('model_version_tags_pk', ['version_id', 'key'])
    .execute();
  await db.schema
    .createTable('model_aliases')
    .addColumn('model_id', 'integer', (c) => c.notNull())
    .addColumn('alias', 'text', (c) => c.notNull())
    .addColumn('version', 'integer', (c) => c.notNull())
    .addColumn('updated_at', t.millis, (c) => c.notNull())
    .addPrimaryKeyConstraint('model_aliases_pk', ['model_id', 'alias'])
    .addForeignKeyConstraint(
      'model_aliases_version_fk',
      ['model_id', 'version'],
      'model_versions',
      ['model_id', 'version'],
      (fk) => fk.onDelete('cascade'),
    )
    .execute();
  // The audit trail: one row per stage move or alias change; rows of one atomic change
  // (a promotion moves an alias and two stages) share a change_id.
  await db.schema
    .createTable('stage_transitions')
    .addColumn('id', 'integer', autoId(db))
    .addColumn('change_id', 'text', (c) => c.notNull())
    .addColumn('model_id', 'integer', (c) =>
      c.notNull().references('registered_models.id').onDelete('cascade'),
    )
    .addColumn('version', 'integer', (c) => c.notNull())
    .addColumn('action', 'text', (c) =>
      c.notNull().check(sql`action in ('create', 'stage', 'alias_set', 'alias_delete', 'delete')`),
    )
    .addColumn('from_stage', 'text')
    .addColumn('to_stage', 'text')
    .addColumn('alias', 'text')
    .addColumn('previous_version', 'integer')
    .addColumn('user', 'text', (c) => c.notNull())
    .addColumn('at', t.millis, (c) => c.notNull())
    .addColumn('comment', 'text')
    .execute();
  await db.schema
    .createIndex('stage_transitions_model_version')
    .on('stage_transitions')
    .columns(['model_id', 'version', 'id'])
    .execute();
}

export async function down(db: Kysely<any>): Promise<void> {
  for (const table of [
    'stage_transitions',
    'model_aliases',
    'model_version_tags',
    'model_versions',
    'registered_model_tags',
    'registered_models',
  ])
    await db.schema.dropTable(table).execute();
}
