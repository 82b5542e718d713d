import { sql, type Kysely } from 'kysely';
import { autoId, columnTypes, isPostgres } from './dialect.js';

// Frozen in time: imports nothing from the app, whatever the tables become later.
// One row per vector space (a model version's embeddings, a pretrained backbone's
// features…): the table holding its vectors (a sqlite-vec vec0 table, or a pgvector table)
// and their dimension. The tables themselves are made when a space is first used, since
// their dimension is known only then.
export async function up(db: Kysely<any>): Promise<void> {
  const t = columnTypes(db);
  await db.schema
    .createTable('vector_spaces')
    .addColumn('id', 'integer', autoId(db))
    .addColumn('space', 'text', (c) => c.notNull().unique())
    .addColumn('table_name', 'text', (c) => c.notNull().unique())
    .addColumn('dimension', 'integer', (c) => c.notNull().check(sql`dimension >= 1`))
    .addColumn('created_at', t.millis, (c) => c.notNull())
    .execute();
  if (isPostgres(db)) return;
  // Before this migration a model version's embeddings lived in vec0 tables
  // `embeddings_<model version id>`: adopt them as that version's space.
  const tables = await sql<{ name: string }>`
    select name from sqlite_master where type = 'table' and name like 'embeddings_%'`.execute(db);
  for (const { name } of tables.rows) {
    const match = /^embeddings_(\d+)$/.exec(name);
    if (!match) continue; // vec0's shadow tables (embeddings_7_chunks…)
    const job = await sql<{ dimension: number | null }>`
      select dimension from embedding_jobs where model_version_id = ${Number(match[1])}`.execute(
      db,
    );
    const dimension = job.rows[0]?.dimension;
    if (!dimension) continue;
    await sql`insert into vector_spaces (space, table_name, dimension, created_at)
      values (${`model-version:${match[1]}`}, ${name}, ${dimension}, ${Date.now()})`.execute(db);
  }
}

export async function down(db: Kysely<any>): Promise<void> {
  await db.schema.dropTable('vector_spaces').execute();
}
