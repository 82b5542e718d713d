import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { runCli } from '../helpers/cli.js';
import { tempDir } from '../helpers/fixtures.js';
import { saveTinyModel } from '../helpers/models.js';

describe('menagerie models (CLI)', () => {
  const { dir, remove } = tempDir('menagerie-models-cli-');
  afterAll(remove);

  it('registers, promotes, aliases, resolves and shows history; refuses what it should', async () => {
    const dataDir = path.join(dir, 'data');
    const artifact = path.join(dir, 'artifact');
    await saveTinyModel(artifact, { labels: ['cat', 'dog'] });
    const cli = (...args: string[]) => runCli(['models', ...args, '--data-dir', dataDir]);
    for (const expected of [1, 2]) {
      const r = cli('register', '--name', 'faces', '--source', artifact, '--run', 'b'.repeat(32));
      expect(r.code, r.stderr).toBe(0);
      expect(r.stdout).toContain(`registered faces version ${expected} (None, READY)`);
    }
    expect(cli('promote', 'faces', '1').code).toBe(0);
    const promoted = cli('promote', 'faces', '2', '--comment', 'better val');
    expect(promoted.stdout).toMatch(/champion: faces version 2 \(Production, READY\) @champion/);
    expect(promoted.stdout).toMatch(/archived: v1/);
    expect(cli('alias', 'faces', 'challenger', '1').code).toBe(0);
    expect(cli('resolve', 'models:/faces@champion').stdout).toMatch(/^faces version 2 /);
    const show = cli('show', 'faces');
    expect(show.stdout).toMatch(/^2\s+Production\s+READY\s+@champion/m);
    expect(show.stdout).toMatch(/^1\s+Archived\s+READY\s+@challenger/m);
    const history = cli('history', 'faces');
    expect(history.stdout).toMatch(/^\S+ \S+\s+2\s+None → Production\s+\S+\s+better val$/m);
    expect(history.stdout).toContain('better val');
    expect(cli('list').stdout).toMatch(/^faces\s+2\s+@challenger=v1 @champion=v2/m);

    for (const [args, message] of [
      [['alias', 'faces', 'latest', '1'], /error MODEL_ALIAS_INVALID: 'latest' is reserved/],
      [['delete', 'faces', '2'], /error MODEL_VERSION_IN_USE: .*champion/],
      [['transition', 'faces', '2', 'Archived'], /error MODEL_VERSION_IN_USE/],
      [['resolve', 'faces/2'], /error MODEL_URI_INVALID/],
      [['register', '--name', 'faces', '--source', dir], /error MODEL_ARTIFACT_INVALID/],
    ] as const) {
      const r = cli(...args);
      expect(r.code, r.stdout).toBe(1);
      expect(r.stderr).toMatch(message);
    }
    // About twenty CLI processes, each starting TypeScript and TensorFlow: minutes on a loaded machine.
  }, 300_000);
});
