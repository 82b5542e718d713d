import { createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openWorkspace, type Workspace } from '../../cli/workspace.js';
import { countImages } from '../../data/image-catalog.js';
import {
  databaseBackend,
  DATABASE_BACKENDS,
  SERVICE_START_TIMEOUT,
  storeBackend,
  STORE_BACKENDS,
} from '../helpers/backends.js';
import { startCli, runCli } from '../helpers/cli.js';
import { makeImage, tempDir, writeFile } from '../helpers/fixtures.js';

const LABELS = ['cat', 'dog', 'wild'];
const PER_LABEL = 400;

/** Every blob the store holds, temporary files of a killed writer included. */
async function blobs(workspace: Workspace): Promise<string[]> {
  const folder = path.join(workspace.dataDir, 'blobs');
  if (workspace.blobs.location.startsWith('s3://')) {
    const uris: string[] = [];
    for await (const b of workspace.blobs.list!()) uris.push(b.uri);
    return uris.sort();
  }
  if (!fs.existsSync(folder)) return [];
  return fs
    .readdirSync(folder, { recursive: true })
    .map(String)
    .filter((f) => fs.statSync(path.join(folder, f)).isFile())
    .sort();
}

// The embedded default, and the scaled-out pair: PostgreSQL with S3.
const SETUPS = (
  [
    ['sqlite', 'local'],
    ['postgres', 's3'],
  ] as const
).filter(([db, store]) => DATABASE_BACKENDS.includes(db) && STORE_BACKENDS.includes(store));

describe.each(SETUPS)('ingest killed with SIGKILL, then re-run, on %s + %s', (db, store) => {
  const { dir, remove } = tempDir('menagerie-kill-');
  const source = path.join(dir, 'src');
  const database = databaseBackend(db);
  const stores = { killed: storeBackend(store), clean: storeBackend(store) };
  /** The command line's flags and `openWorkspace`'s options for one of the two workspaces. */
  const target = async (name: 'killed' | 'clean') => {
    const url = await database.location({ name });
    const storeUrl = await stores[name].url();
    return {
      options: {
        dataDir: path.join(dir, name),
        ...(url && { database: url }),
        ...(storeUrl && { store: storeUrl }),
      },
      flags: [
        '--data-dir',
        path.join(dir, name),
        ...(url ? ['--database', url] : []),
        ...(storeUrl ? ['--store', storeUrl] : []),
      ],
    };
  };
  beforeAll(async () => {
    for (const [i, label] of LABELS.entries()) {
      for (let n = 0; n < PER_LABEL; n++) {
        const seed = i * PER_LABEL + n;
        writeFile(
          path.join(source, label, `${label}-${n}.jpg`),
          await makeImage(seed, { size: 192 }),
        );
      }
    }
  }, SERVICE_START_TIMEOUT);
  afterAll(remove);

  it('leaves a consistent database and ends with the same counts as an uninterrupted run', async () => {
    const killed = await target('killed');
    const child = startCli(['ingest', source, ...killed.flags]);
    const exited = new Promise((resolve) => child.once('exit', resolve));
    // Kill once some batches are committed and more are in flight.
    let committed = 0;
    for (let tries = 0; tries < 3000 && committed < 200; tries++) {
      await new Promise((r) => setTimeout(r, 10));
      if (db === 'sqlite' && !fs.existsSync(path.join(killed.options.dataDir, 'menagerie.db')))
        continue;
      try {
        const ws = await openWorkspace(killed.options);
        committed = (await ws.database.db.selectFrom('images').select('id').execute()).length;
        await ws.close();
      } catch {
        // The child may be migrating; try again.
      }
    }
    child.kill('SIGKILL');
    await exited;
    expect(committed).toBeGreaterThan(0);

    // After the kill: whole rows only, each pointing at a whole blob with its bytes.
    const after = await openWorkspace(killed.options);
    if (after.database.backend === 'sqlite')
      expect(after.database.sqlite.pragma('integrity_check', { simple: true })).toBe('ok');
    const rows = await after.database.db.selectFrom('images').select(['uri', 'sha256']).execute();
    expect(rows.length).toBeLessThan(LABELS.length * PER_LABEL);
    for (const row of rows) {
      const bytes = await after.blobs.get(row.uri);
      expect(createHash('sha256').update(bytes).digest('hex')).toBe(row.sha256);
    }
    await after.close();

    const rerun = runCli(['ingest', source, ...killed.flags]);
    expect(rerun.code, rerun.stderr).toBe(0);
    const clean = await target('clean');
    expect(runCli(['ingest', source, ...clean.flags]).code).toBe(0);

    const [a, b] = await Promise.all([openWorkspace(killed.options), openWorkspace(clean.options)]);
    expect(await countImages(a.database.db)).toEqual(await countImages(b.database.db));
    const total = (await countImages(a.database.db)).reduce((n, c) => n + c.count, 0);
    expect(total).toBe(LABELS.length * PER_LABEL);
    // No orphan blobs, no temporary files: one blob per row.
    expect(await blobs(a)).toEqual(await blobs(b));
    expect(await blobs(a)).toHaveLength(total);
    await Promise.all([a.close(), b.close()]);
  }, 600_000);
});
