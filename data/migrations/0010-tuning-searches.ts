import { sql, type Kysely } from 'kysely';
import { autoId, columnTypes } from './dialect.js';

// Frozen in time: imports nothing from the app, whatever the tables become later.
// A distributed tuning search (`tune --distributed N`): the oracle's state and its trials
// live here, not in one process, so any worker reports a trial and proposes the next ones
// under this row's lock, and no chief process is left to lose.
export async function up(db: Kysely<any>): Promise<void> {
  const t = columnTypes(db);
  await db.schema
    .createTable('tuning_searches')
    .addColumn('id', 'integer', autoId(db))
    // The tuning (parent) run; its trials are its child runs.
    .addColumn('run_id', 'text', (c) => c.notNull().unique())
    // JSON: plugin, tuner, objective, epochs, seed, options every trial needs.
    .addColumn('config', 'text', (c) => c.notNull())
    // JSON: the oracle's state() and the trials with their status.
    .addColumn('state', 'text', (c) => c.notNull())
    .addColumn('parallelism', 'integer', (c) => c.notNull())
    .addColumn('status', 'text', (c) =>
      c.notNull().check(sql`status in ('RUNNING', 'FINISHED', 'FAILED', 'KILLED')`),
    )
    .addColumn('created_at', t.millis, (c) => c.notNull())
    .addColumn('updated_at', t.millis, (c) => c.notNull())
    .execute();
}

export async function down(db: Kysely<any>): Promise<void> {
  await db.schema.dropTable('tuning_searches').execute();
}
