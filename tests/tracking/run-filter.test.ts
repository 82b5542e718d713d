import { Kysely, PostgresDialect, SqliteDialect } from 'kysely';
import SqliteDatabase from 'better-sqlite3';
import pg from 'pg';
import { describe, expect, it } from 'vitest';
import type { Database } from '../../data/tables.js';
import { parseRunFilter, parseRunOrder, runFilterExpression } from '../../tracking/run-filter.js';

describe('parseRunFilter', () => {
  it('builds an AST: AND binds tighter than OR, parentheses group', () => {
    expect(
      parseRunFilter(
        "metrics.acc > 0.9 AND params.opt = 'adam' OR (tags.`my team` IN ('x', \"y\"))",
      ),
    ).toEqual({
      type: 'or',
      items: [
        {
          type: 'and',
          items: [
            { type: 'numeric', target: { entity: 'metric', key: 'acc' }, op: '>', value: 0.9 },
            { type: 'string', target: { entity: 'param', key: 'opt' }, op: '=', value: 'adam' },
          ],
        },
        { type: 'string', target: { entity: 'tag', key: 'my team' }, op: 'IN', value: ['x', 'y'] },
      ],
    });
    expect(parseRunFilter('')).toBeNull();
    expect(parseRunOrder('metrics.`val acc`  desc')).toEqual({
      target: { entity: 'metric', key: 'val acc' },
      direction: 'desc',
    });
  });

  it('compiles to SQL whose text holds no user value: every value is a bound parameter', () => {
    const db = new Kysely<Database>({
      dialect: new SqliteDialect({ database: new SqliteDatabase(':memory:') }),
    });
    const filter = parseRunFilter(
      "params.`x; DROP TABLE runs` = '''; DROP TABLE runs; --' AND params.o LIKE 'A%' AND metrics.m <= -1e-3",
    )!;
    const compiled = db
      .selectFrom('runs')
      .select('runs.id')
      .where((eb) => runFilterExpression(eb, filter, 'sqlite'))
      .compile();
    expect(compiled.sql).not.toMatch(/drop|'/i);
    expect(compiled.sql).toMatch(/glob \?/);
    expect(compiled.parameters).toEqual([
      'x; DROP TABLE runs',
      "'; DROP TABLE runs; --",
      'o',
      'A*',
      'm',
      -0.001,
    ]);
    void db.destroy();
  });

  it('gives PostgreSQL the case-sensitive LIKE, with no escape character, as SQLite GLOB means', () => {
    // Compiling needs no connection: the pool never connects.
    const db = new Kysely<Database>({ dialect: new PostgresDialect({ pool: new pg.Pool() }) });
    const filter = parseRunFilter("params.o LIKE 'A%' AND tags.t ILIKE '%x_'")!;
    const compiled = db
      .selectFrom('runs')
      .select('runs.id')
      .where((eb) => runFilterExpression(eb, filter, 'postgres'))
      .compile();
    expect(compiled.sql).toMatch(/"value" like \$2 escape ''/);
    expect(compiled.sql).toMatch(/"value" ilike \$4 escape ''/);
    expect(compiled.parameters).toEqual(['o', 'A%', 't', '%x_']);
    void db.destroy();
  });

  it('rejects filters over 10,000 characters', () => {
    expect(() => parseRunFilter(`metrics.a > 1${' AND metrics.a > 1'.repeat(600)}`)).toThrow(
      /longer than 10000/,
    );
  });
});
