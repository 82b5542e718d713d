import fs from 'node:fs';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { openWorkspace } from '../../cli/workspace.js';
import { createModelRegistry } from '../../registry/model-registry.js';
import { runCli } from '../helpers/cli.js';
import { AFHQ_MINI, tempDir } from '../helpers/fixtures.js';

// `demo --photos` runs the loop on real photos (afhq-mini's 85 AFHQ faces, referenced where
// they are): both models train, and the transfer model, the one that sees animals, wins.
describe('menagerie demo --photos', () => {
  const { dir, remove } = tempDir('menagerie-demo-photos-');
  afterAll(remove);

  it('ingests the photos by reference, trains both models and promotes the transfer one', async () => {
    const dataDir = path.join(dir, 'data');
    const r = runCli([
      '--data-dir',
      dataDir,
      'demo',
      '--photos',
      AFHQ_MINI,
      '--epochs',
      '8',
      '--no-serve',
    ]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toMatch(/demo photos: 85 added/);
    expect(r.stderr).toMatch(/faces version \d promoted to champion/);
    // Nothing drawn, nothing copied: the catalogue points at the photos.
    expect(fs.existsSync(path.join(dataDir, 'demo-data'))).toBe(false);
    const ws = await openWorkspace({ dataDir });
    try {
      const uris = await ws.database.db.selectFrom('images').select('uri').execute();
      expect(uris).toHaveLength(85);
      expect(uris.every((u) => u.uri.startsWith('file://'))).toBe(true);
      const champion = await createModelRegistry({ db: ws.database.db }).getVersionByAlias(
        'faces',
        'champion',
      );
      expect(champion.plugin).toBe('menagerie:transfer');
    } finally {
      await ws.close();
    }
  }, 600_000);
});
