import type pg from 'pg';
import pgvector from 'pgvector';
import type { PostgresOpenDatabase } from '../data/database.js';
import {
  checkDimension,
  checkVector,
  vectorTableName,
  type VectorIndex,
  type VectorIndexOptions,
  type VectorItem,
  type VectorSearchMethod,
} from './vector-space.js';

const DEFAULT_HNSW_THRESHOLD = 50_000;
const DEFAULT_EF_SEARCH = 100;
const UPSERT_CHUNK = 1000;

interface Space {
  table: string;
  dimension: number;
}

const toSql = (vector: Float32Array): string => pgvector.toSql(Array.from(vector)) as string;
const fromSql = (text: string): Float32Array =>
  new Float32Array(pgvector.fromSql(text) as number[]);

/**
 * Spaces as pgvector tables `(image_id bigint, label text, embedding vector(d))` with a
 * label index. Queries scan exactly (cosine `<=>`) until `optimize` finds a space past the
 * threshold and builds an HNSW index on it, concurrently and outside any transaction;
 * `hnsw.ef_search` (and an iterative scan, so a label filter still gets k rows) is then
 * set per query, inside that query's own transaction.
 */
export function pgVectorIndex(
  database: PostgresOpenDatabase,
  options: VectorIndexOptions = {},
): VectorIndex {
  const { pool } = database;
  const threshold = options.hnswThreshold ?? DEFAULT_HNSW_THRESHOLD;
  const efSearch = options.efSearch ?? DEFAULT_EF_SEARCH;
  const spaces = new Map<string, Space>();

  const open = async (space: string): Promise<Space | null> => {
    const cached = spaces.get(space);
    if (cached) return cached;
    const { rows } = await pool.query<{ table_name: string; dimension: number }>(
      'select table_name, dimension from vector_spaces where space = $1',
      [space],
    );
    if (!rows[0]) return null;
    const opened = { table: rows[0].table_name, dimension: rows[0].dimension };
    spaces.set(space, opened);
    return opened;
  };

  const required = async (space: string): Promise<Space> => {
    const opened = await open(space);
    if (!opened) throw new RangeError(`no vector space '${space}': ensure it first`);
    return opened;
  };

  const inTransaction = async <T>(fn: (client: pg.PoolClient) => Promise<T>): Promise<T> => {
    const client = await pool.connect();
    try {
      await client.query('begin');
      const result = await fn(client);
      await client.query('commit');
      return result;
    } catch (error) {
      await client.query('rollback').catch(() => {});
      throw error;
    } finally {
      client.release();
    }
  };

  const count = async (space: string): Promise<number> => {
    const s = await open(space);
    if (!s) return 0;
    const { rows } = await pool.query<{ n: number }>(`select count(*) as n from ${s.table}`);
    return rows[0]!.n;
  };

  const hnswIndex = (s: Space) => `${s.table}_hnsw`;

  return {
    kind: 'pgvector',
    async ensure(space, dimension) {
      checkDimension(dimension);
      if (!(await open(space))) {
        const table = vectorTableName(space);
        await inTransaction(async (client) => {
          // Serialises creators of the same space (`if not exists` alone can still race).
          await client.query('select pg_advisory_xact_lock(hashtextextended($1, 0))', [
            `menagerie:vector-space:${database.schema}:${space}`,
          ]);
          await client.query('create extension if not exists vector');
          await client.query(
            'insert into vector_spaces (space, table_name, dimension, created_at) ' +
              'values ($1, $2, $3, $4) on conflict (space) do nothing',
            [space, table, dimension, Date.now()],
          );
          await client.query(
            `create table if not exists ${table} (image_id bigint primary key, ` +
              `label text not null, embedding vector(${dimension}) not null)`,
          );
          await client.query(`create index if not exists ${table}_label on ${table} (label)`);
        });
      }
      const { dimension: held } = await required(space);
      if (held !== dimension)
        throw new RangeError(
          `vector space '${space}' holds ${held}-value vectors, not ${dimension}`,
        );
    },
    async dimension(space) {
      return (await open(space))?.dimension ?? null;
    },
    async upsert(space, items) {
      const s = await required(space);
      for (const item of items) checkVector(item.vector, s.dimension, space);
      await inTransaction(async (client) => {
        for (let i = 0; i < items.length; i += UPSERT_CHUNK) {
          const chunk = items.slice(i, i + UPSERT_CHUNK);
          await client.query(
            `insert into ${s.table} (image_id, label, embedding) ` +
              'select * from unnest($1::bigint[], $2::text[], $3::vector[]) ' +
              'on conflict (image_id) do update set label = excluded.label, embedding = excluded.embedding',
            [chunk.map((r) => r.id), chunk.map((r) => r.label), chunk.map((r) => toSql(r.vector))],
          );
        }
      });
    },
    async delete(space, ids) {
      const s = await required(space);
      await pool.query(`delete from ${s.table} where image_id = any($1::bigint[])`, [ids]);
    },
    count,
    async ids(space) {
      const s = await open(space);
      if (!s) return new Set();
      const { rows } = await pool.query<{ id: number }>(`select image_id as id from ${s.table}`);
      return new Set(rows.map((r) => r.id));
    },
    async get(space, id) {
      const s = await open(space);
      if (!s) return null;
      const { rows } = await pool.query<{ embedding: string }>(
        `select embedding::text as embedding from ${s.table} where image_id = $1`,
        [id],
      );
      return rows[0] ? fromSql(rows[0].embedding) : null;
    },
    async query(space, vector, k, opts = {}) {
      const s = await required(space);
      checkVector(vector, s.dimension, space);
      return inTransaction(async (client) => {
        // Local to this transaction: another query on the pooled connection is unaffected.
        await client.query(
          "select set_config('hnsw.ef_search', $1, true), " +
            "set_config('hnsw.iterative_scan', 'strict_order', true)",
          [String(Math.min(1000, Math.max(efSearch, k)))],
        );
        const params: unknown[] = [toSql(vector), k];
        if (opts.label !== undefined) params.push(opts.label);
        const { rows } = await client.query<{ id: number; label: string; distance: number }>(
          `select image_id as id, label, embedding <=> $1::vector as distance from ${s.table} ` +
            (opts.label !== undefined ? 'where label = $3 ' : '') +
            // Nothing after the distance: a second sort key would keep HNSW from ordering.
            'order by embedding <=> $1::vector limit $2',
          params,
        );
        return rows.sort((a, b) => a.distance - b.distance || a.id - b.id);
      });
    },
    async optimize(space): Promise<VectorSearchMethod> {
      const s = await required(space);
      const name = hnswIndex(s);
      const state = await pool.query<{ valid: boolean }>(
        'select i.indisvalid as valid from pg_index i join pg_class c on c.oid = i.indexrelid ' +
          'where c.relname = $1 and c.relnamespace = to_regnamespace($2)',
        [name, database.schema],
      );
      if (state.rows[0]?.valid) return 'hnsw';
      // Fresh statistics, so the planner weighs a label filter against the graph correctly.
      await pool.query(`analyze ${s.table}`);
      if ((await count(space)) < threshold) return 'exact';
      const client = await pool.connect();
      try {
        // A build that was interrupted leaves an invalid index behind: start over.
        if (state.rows[0]) await client.query(`drop index concurrently if exists ${name}`);
        // The graph is built in memory; past maintenance_work_mem it spills and slows down.
        await client.query("set maintenance_work_mem = '512MB'");
        // CONCURRENTLY: queries and upserts go on while it builds; it cannot run in a
        // transaction, so it runs here and never inside a migration.
        await client.query(
          `create index concurrently if not exists ${name} on ${s.table} ` +
            'using hnsw (embedding vector_cosine_ops)',
        );
        await client.query('reset maintenance_work_mem');
      } finally {
        client.release();
      }
      return 'hnsw';
    },
    async spaces() {
      const { rows } = await pool.query<{ space: string; dimension: number }>(
        'select space, dimension from vector_spaces order by id',
      );
      return Promise.all(rows.map(async (r) => ({ ...r, count: await count(r.space) })));
    },
    async scan(space, afterId, limit) {
      const s = await required(space);
      const { rows } = await pool.query<{ id: number; label: string; embedding: string }>(
        `select image_id as id, label, embedding::text as embedding from ${s.table} ` +
          'where image_id > $1 order by image_id limit $2',
        [afterId, limit],
      );
      return rows.map((r): VectorItem => ({
        id: r.id,
        label: r.label,
        vector: fromSql(r.embedding),
      }));
    },
    async drop(space) {
      const s = await open(space);
      if (!s) return;
      spaces.delete(space);
      await inTransaction(async (client) => {
        await client.query(`drop table if exists ${s.table}`);
        await client.query('delete from vector_spaces where space = $1', [space]);
      });
    },
  };
}
