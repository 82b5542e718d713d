import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { openDatabase } from '../../data/database.js';
import { migrations } from '../../data/migrations/index.js';
import { REPO_ROOT, tempDir } from '../helpers/fixtures.js';

describe('openDatabase', () => {
  const cleanups: (() => void)[] = [];
  afterEach(() => cleanups.splice(0).forEach((c) => c()));
  const dbFile = () => {
    const { dir, remove } = tempDir();
    cleanups.push(remove);
    return path.join(dir, 'nested', 'menagerie.db');
  };

  it('migrates an empty file to the newest schema, and a second open changes nothing', async () => {
    const file = dbFile();
    const first = await openDatabase(file);
    const latest = Object.keys(migrations).at(-1);
    expect(first.schemaVersion).toBe(latest);
    const tables = (await first.db.introspection.getTables()).map((t) => t.name).sort();
    // Later migrations add tables; the first issue's and the registry's must be there.
    expect(tables).toEqual(
      expect.arrayContaining(['images', 'labels', 'registered_models', 'stage_transitions']),
    );
    await first.close();

    const second = await openDatabase(file);
    expect(second.schemaVersion).toBe(latest);
    const applied = second.sqlite.prepare('select count(*) as n from kysely_migration').get() as {
      n: number;
    };
    expect(applied.n).toBe(Object.keys(migrations).length);
    await second.close();
  });

  it('lets processes that open a new file at the same moment all end on the newest schema', async () => {
    // A server and a CLI command started together on a fresh data directory: each finds every
    // migration pending. One migrates; the others wait for its write lock and find none left.
    const file = dbFile();
    const go = `${file}.go`;
    fs.mkdirSync(path.dirname(file), { recursive: true });
    // Each child says it is ready, then opens the moment the go file appears: together.
    const open = `import fs from 'node:fs';
      import { openDatabase } from ${JSON.stringify(path.join(REPO_ROOT, 'data/database.ts'))};
      console.log('ready');
      while (!fs.existsSync(process.argv[2])) await new Promise((r) => setTimeout(r, 1));
      const d = await openDatabase(process.argv[1]);
      console.log(d.schemaVersion);
      await d.close();`;
    const children = Array.from({ length: 6 }, () => {
      const child = spawn(
        process.execPath,
        ['--import', 'tsx', '--input-type=module', '-e', open, file, go],
        { cwd: REPO_ROOT, stdio: ['ignore', 'pipe', 'pipe'] },
      );
      let out = '';
      let err = '';
      const ready = new Promise<void>((resolve) =>
        child.stdout.on('data', (d: Buffer) => {
          out += d.toString();
          if (out.includes('ready')) resolve();
        }),
      );
      child.stderr.on('data', (d: Buffer) => (err += d.toString()));
      const exited = new Promise<{ code: number | null; out: string; err: string }>((resolve) =>
        child.on('exit', (code) => resolve({ code, out, err })),
      );
      return { ready, exited };
    });
    await Promise.all(children.map((c) => c.ready));
    fs.writeFileSync(go, '');
    const latest = Object.keys(migrations).at(-1);
    for (const r of await Promise.all(children.map((c) => c.exited))) {
      expect(r.code, r.err).toBe(0);
      expect(r.out.trim().split('\n').at(-1)).toBe(latest);
    }
    const database = await openDatabase(file);
    const applied = database.sqlite.prepare('select count(*) as n from kysely_migration').get();
    expect(applied).toEqual({ n: Object.keys(migrations).length });
    await database.close();
  }, 60_000);

  it('runs with WAL, foreign keys and a busy timeout', async () => {
    const database = await openDatabase(dbFile());
    expect(database.sqlite.pragma('journal_mode', { simple: true })).toBe('wal');
    expect(database.sqlite.pragma('foreign_keys', { simple: true })).toBe(1);
    expect(database.sqlite.pragma('busy_timeout', { simple: true })).toBe(5000);
    // A foreign key that points nowhere is refused.
    expect(() =>
      database.sqlite
        .prepare(
          `insert into images (sha256, uri, label_id, split, width, height, format, bytes, added_at)
           values ('x', 'blob:x', 999, 'train', 1, 1, 'jpeg', 1, 0)`,
        )
        .run(),
    ).toThrow(/FOREIGN KEY/);
    await database.close();
  });

  it('refuses a schema newer than the code, with a code and both versions named', async () => {
    const file = dbFile();
    const database = await openDatabase(file);
    database.sqlite
      .prepare(
        "insert into kysely_migration (name, timestamp) values ('9999-from-the-future', 'x')",
      )
      .run();
    await database.close();
    await expect(openDatabase(file)).rejects.toMatchObject({
      code: 'DB_SCHEMA_TOO_NEW',
      message: expect.stringContaining('9999-from-the-future'),
    });
  });

  it('does not migrate when asked not to', async () => {
    const database = await openDatabase(dbFile(), { migrate: false });
    expect(database.schemaVersion).toBe('none');
    await database.close();
  });
});
