import { createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openWorkspace } from '../../cli/workspace.js';
import { countImages } from '../../data/image-catalog.js';
import { startCli, runCli } from '../helpers/cli.js';
import { makeImage, tempDir, writeFile } from '../helpers/fixtures.js';

const LABELS = ['cat', 'dog', 'wild'];
const PER_LABEL = 400;

function blobFiles(dataDir: string): string[] {
  const root = path.join(dataDir, 'blobs');
  if (!fs.existsSync(root)) return [];
  return fs
    .readdirSync(root, { recursive: true })
    .map(String)
    .filter((f) => fs.statSync(path.join(root, f)).isFile());
}

describe('ingest killed with SIGKILL, then re-run', () => {
  const { dir, remove } = tempDir('menagerie-kill-');
  const source = path.join(dir, 'src');
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
  });
  afterAll(remove);

  it('leaves a consistent database and ends with the same counts as an uninterrupted run', async () => {
    const killed = path.join(dir, 'killed');
    const child = startCli(['ingest', source, '--data-dir', killed]);
    const exited = new Promise((resolve) => child.once('exit', resolve));
    // Kill once some batches are committed and more are in flight.
    const dbFile = path.join(killed, 'menagerie.db');
    let committed = 0;
    for (let tries = 0; tries < 3000 && committed < 200; tries++) {
      await new Promise((r) => setTimeout(r, 10));
      if (!fs.existsSync(dbFile)) continue;
      try {
        const ws = await openWorkspace({ dataDir: killed });
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
    const after = await openWorkspace({ dataDir: killed });
    expect(after.database.sqlite.pragma('integrity_check', { simple: true })).toBe('ok');
    const rows = await after.database.db.selectFrom('images').select(['uri', 'sha256']).execute();
    expect(rows.length).toBeLessThan(LABELS.length * PER_LABEL);
    for (const row of rows) {
      const bytes = await after.blobs.get(row.uri);
      expect(createHash('sha256').update(bytes).digest('hex')).toBe(row.sha256);
    }
    await after.close();

    const rerun = runCli(['ingest', source, '--data-dir', killed]);
    expect(rerun.code, rerun.stderr).toBe(0);
    const clean = path.join(dir, 'clean');
    expect(runCli(['ingest', source, '--data-dir', clean]).code).toBe(0);

    const [a, b] = await Promise.all([
      openWorkspace({ dataDir: killed }),
      openWorkspace({ dataDir: clean }),
    ]);
    expect(await countImages(a.database.db)).toEqual(await countImages(b.database.db));
    const total = (await countImages(a.database.db)).reduce((n, c) => n + c.count, 0);
    expect(total).toBe(LABELS.length * PER_LABEL);
    // No orphan blobs, no temporary files: one blob per row.
    expect(blobFiles(killed).sort()).toEqual(blobFiles(clean).sort());
    expect(blobFiles(killed)).toHaveLength(total);
    await Promise.all([a.close(), b.close()]);
  });
});
