import type SqliteDatabase from 'better-sqlite3';
import type { SqliteOpenDatabase } from '../data/database.js';
import {
  checkDimension,
  checkVector,
  vectorTableName,
  type Neighbour,
  type VectorIndex,
  type VectorItem,
} from './vector-space.js';

interface Space {
  table: string;
  dimension: number;
  insert: SqliteDatabase.Statement;
  remove: SqliteDatabase.Statement;
  selectIds: SqliteDatabase.Statement;
  selectCount: SqliteDatabase.Statement;
  selectOne: SqliteDatabase.Statement;
  scan: SqliteDatabase.Statement;
  knn: SqliteDatabase.Statement;
  knnLabel: SqliteDatabase.Statement;
}

/**
 * Spaces as sqlite-vec `vec0` tables (cosine distance, partitioned by label so a same-label
 * search reads only that label's vectors); `vector_spaces` names each space's table.
 * vec0 searches exactly, by a full scan of the partition.
 */
export function sqliteVectorIndex(database: SqliteOpenDatabase): VectorIndex {
  const { sqlite } = database;
  const spaces = new Map<string, Space>();
  const findSpace = sqlite.prepare(
    'SELECT table_name AS tableName, dimension FROM vector_spaces WHERE space = ?',
  );

  const open = (space: string): Space | null => {
    const cached = spaces.get(space);
    if (cached) return cached;
    const row = findSpace.get(space) as { tableName: string; dimension: number } | undefined;
    if (!row) return null;
    const t = row.tableName;
    // vec0 accepts only integers for its primary key, and better-sqlite3 binds numbers as
    // REAL: ids are bound as BigInt.
    const opened: Space = {
      table: t,
      dimension: row.dimension,
      insert: sqlite.prepare(`INSERT INTO ${t} (image_id, label, embedding) VALUES (?, ?, ?)`),
      remove: sqlite.prepare(`DELETE FROM ${t} WHERE image_id = ?`),
      selectIds: sqlite.prepare(`SELECT image_id FROM ${t}`).pluck(),
      selectCount: sqlite.prepare(`SELECT count(*) FROM ${t}`).pluck(),
      selectOne: sqlite.prepare(`SELECT embedding FROM ${t} WHERE image_id = ?`).pluck(),
      scan: sqlite.prepare(
        `SELECT image_id AS id, label, embedding FROM ${t} WHERE image_id > ? ORDER BY image_id LIMIT ?`,
      ),
      // vec0 takes exactly one ORDER BY distance: ties are put in id order in `query`.
      knn: sqlite.prepare(
        `SELECT image_id AS id, label, distance FROM ${t} ` +
          'WHERE embedding MATCH ? AND k = ? ORDER BY distance',
      ),
      knnLabel: sqlite.prepare(
        `SELECT image_id AS id, label, distance FROM ${t} ` +
          'WHERE embedding MATCH ? AND k = ? AND label = ? ORDER BY distance',
      ),
    };
    spaces.set(space, opened);
    return opened;
  };

  const required = (space: string): Space => {
    const opened = open(space);
    if (!opened) throw new RangeError(`no vector space '${space}': ensure it first`);
    return opened;
  };

  const putAll = sqlite.transaction((s: Space, items: readonly VectorItem[]) => {
    for (const item of items) {
      // vec0 ignores OR REPLACE on its primary key: delete first so a rerun overwrites.
      s.remove.run(BigInt(item.id));
      s.insert.run(BigInt(item.id), item.label, bytesOf(item.vector));
    }
  });
  const removeAll = sqlite.transaction((s: Space, ids: readonly number[]) => {
    for (const id of ids) s.remove.run(BigInt(id));
  });

  const create = (space: string, dimension: number): void => {
    const table = vectorTableName(space);
    sqlite.transaction(() => {
      sqlite
        .prepare(
          'INSERT INTO vector_spaces (space, table_name, dimension, created_at) VALUES (?, ?, ?, ?) ' +
            'ON CONFLICT (space) DO NOTHING',
        )
        .run(space, table, dimension, Date.now());
      sqlite.exec(
        `CREATE VIRTUAL TABLE IF NOT EXISTS ${table} USING vec0(` +
          `image_id integer primary key, label text partition key, ` +
          `embedding float[${dimension}] distance_metric=cosine)`,
      );
    })();
  };

  const count = (space: string): number => {
    const s = open(space);
    return s ? Number(s.selectCount.get()) : 0;
  };

  return {
    kind: 'sqlite-vec',
    async ensure(space, dimension) {
      checkDimension(dimension);
      if (!open(space)) create(space, dimension);
      // A concurrent creator's dimension wins.
      const { dimension: held } = required(space);
      if (held !== dimension)
        throw new RangeError(
          `vector space '${space}' holds ${held}-value vectors, not ${dimension}`,
        );
    },
    async dimension(space) {
      return open(space)?.dimension ?? null;
    },
    async upsert(space, items) {
      const s = required(space);
      for (const item of items) checkVector(item.vector, s.dimension, space);
      putAll(s, items);
    },
    async delete(space, ids) {
      removeAll(required(space), ids);
    },
    async count(space) {
      return count(space);
    },
    async ids(space) {
      const s = open(space);
      return new Set(s ? (s.selectIds.all() as (number | bigint)[]).map(Number) : []);
    },
    async get(space, id) {
      const blob = open(space)?.selectOne.get(BigInt(id)) as Buffer | undefined;
      return blob ? vectorOf(blob) : null;
    },
    async query(space, vector, k, options = {}) {
      const s = required(space);
      checkVector(vector, s.dimension, space);
      const bytes = bytesOf(vector);
      const rows = (
        options.label === undefined ? s.knn.all(bytes, k) : s.knnLabel.all(bytes, k, options.label)
      ) as Neighbour[];
      return rows
        .map((r) => ({ id: Number(r.id), label: r.label, distance: r.distance }))
        .sort((a, b) => a.distance - b.distance || a.id - b.id);
    },
    async optimize() {
      return 'exact';
    },
    async spaces() {
      const rows = sqlite
        .prepare('SELECT space, dimension FROM vector_spaces ORDER BY id')
        .all() as { space: string; dimension: number }[];
      return rows.map((r) => ({ ...r, count: count(r.space) }));
    },
    async scan(space, afterId, limit) {
      const s = required(space);
      const rows = s.scan.all(BigInt(afterId), limit) as {
        id: number | bigint;
        label: string;
        embedding: Buffer;
      }[];
      return rows.map((r) => ({ id: Number(r.id), label: r.label, vector: vectorOf(r.embedding) }));
    },
    async drop(space) {
      const s = open(space);
      if (!s) return;
      spaces.delete(space);
      sqlite.transaction(() => {
        sqlite.exec(`DROP TABLE IF EXISTS ${s.table}`);
        sqlite.prepare('DELETE FROM vector_spaces WHERE space = ?').run(space);
      })();
    },
  };
}

function bytesOf(vector: Float32Array): Buffer {
  return Buffer.from(vector.buffer, vector.byteOffset, vector.byteLength);
}

function vectorOf(blob: Buffer): Float32Array {
  return new Float32Array(blob.buffer.slice(blob.byteOffset, blob.byteOffset + blob.byteLength));
}
