import { spawn } from 'node:child_process';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { openDatabase } from '../../data/database.js';
import { createModelRegistry } from '../../registry/model-registry.js';
import { REPO_ROOT, tempDir } from '../helpers/fixtures.js';
import { versionInput } from '../helpers/registry.js';
import { forEachDatabase } from '../helpers/backends.js';

forEachDatabase((backend) =>
  describe('concurrent promotions', () => {
    const { dir, remove } = tempDir('menagerie-registry-');
    afterAll(remove);

    function worker(file: string, seedValue: number, rounds: number) {
      return new Promise<{ promotions: number; violations: string[] }>((resolve, reject) => {
        const child = spawn(
          process.execPath,
          [
            '--import',
            'tsx',
            path.join(REPO_ROOT, 'tests/registry/promote-worker.ts'),
            file,
            'faces',
            '4',
            String(rounds),
            String(seedValue),
          ],
          { cwd: REPO_ROOT, stdio: ['ignore', 'pipe', 'pipe'] },
        );
        let out = '';
        let err = '';
        child.stdout.on('data', (d: Buffer) => (out += d.toString()));
        child.stderr.on('data', (d: Buffer) => (err += d.toString()));
        child.on('error', reject);
        child.on('exit', (code) =>
          code === 0
            ? resolve(JSON.parse(out.trim().split('\n').at(-1)!))
            : reject(new Error(`worker exited ${code}: ${err}`)),
        );
      });
    }

    it('two processes promoting on one database never leave 0 or 2 Production versions', async () => {
      const file = (await backend.location()) ?? path.join(dir, 'menagerie.db');
      const shared = await openDatabase(file);
      const setup = createModelRegistry({ db: shared.db, user: 'setup' });
      for (let v = 1; v <= 4; v++) {
        await setup.createModelVersion(versionInput());
        await setup.setVersionStatus('faces', v, 'READY');
      }
      await setup.promoteChampion('faces', 1);
      await shared.close();

      const rounds = 300;
      const results = await Promise.all([worker(file, 7, rounds), worker(file, 11, rounds)]);
      for (const r of results) expect(r).toEqual({ promotions: rounds, violations: [] });

      const after = await openDatabase(file);
      const check = createModelRegistry({ db: after.db });
      const versions = (await check.listVersions('faces')).items;
      const production = versions.filter((v) => v.stage === 'Production');
      expect(production).toHaveLength(1);
      expect(production[0]!.aliases).toContain('champion');
      // Every change moved the alias from where the previous change had left it.
      const moves = (await check.getTransitions('faces')).filter((t) => t.alias === 'champion');
      for (let i = 1; i < moves.length; i++)
        expect(moves[i]!.previousVersion).toBe(moves[i - 1]!.version);
      const handovers = moves.filter((m, i) => i > 0 && m.user !== moves[i - 1]!.user).length;
      expect(handovers, 'the two processes really overlapped').toBeGreaterThan(0);
      await after.close();
    }, 120_000);
  }),
);
