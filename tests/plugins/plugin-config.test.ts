import fs from 'node:fs';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { openWorkspace } from '../../cli/workspace.js';
import { findConfigFile, loadConfig } from '../../plugins/plugin-config.js';
import { tempDir } from '../helpers/fixtures.js';
import { runCli } from '../helpers/cli.js';

const FIXTURES = path.resolve(import.meta.dirname, '../fixtures/plugins');

describe('plugin config', () => {
  const cleanups: (() => void)[] = [];
  afterEach(() => cleanups.splice(0).forEach((c) => c()));
  const folder = (): string => {
    const t = tempDir('menagerie-config-');
    cleanups.push(t.remove);
    return t.dir;
  };
  const config = (plugins: unknown, name = 'menagerie.config.json'): string => {
    const dir = folder();
    for (const f of fs.readdirSync(FIXTURES)) {
      if (f.endsWith('.js')) fs.copyFileSync(path.join(FIXTURES, f), path.join(dir, f));
    }
    fs.writeFileSync(
      path.join(dir, name),
      typeof plugins === 'string' ? plugins : JSON.stringify({ plugins }),
    );
    return dir;
  };

  it('loads a third-party model plugin beside the built-ins, recording its source', async () => {
    const ws = await openWorkspace({ dataDir: folder(), cwd: FIXTURES });
    try {
      const plugin = ws.plugins.get('model', 'tiny-mlp');
      expect(plugin.version).toBe('1.0.0');
      expect(ws.pluginSources.get('model:tiny-mlp')).toBe('./tiny-model.js');
      expect(ws.pluginSources.get('storage:menagerie:local-fs')).toBe('builtin');
      expect(ws.configFile).toBe(path.join(FIXTURES, 'menagerie.config.json'));
    } finally {
      await ws.close();
    }
  });

  it.each([
    [
      ['./broken.js'],
      'PLUGIN_INVALID',
      /'half-done' \(model\) is missing hook\(s\): inputSpec, build.*broken\.js/,
    ],
    [['./future.js'], 'PLUGIN_INVALID', /written for plugin API 99.*future\.js/],
    [
      ['./tiny-model.js', './tiny-model.js'],
      'PLUGIN_NAME_CLASH',
      /'tiny-mlp' is already registered/,
    ],
    [['./nope.js'], 'PLUGIN_INVALID', /'\.\/nope\.js' failed to load/],
    [['no-such-package-xyz'], 'PLUGIN_INVALID', /'no-such-package-xyz' not found/],
    [[42], 'CONFIG_INVALID', /"plugins" should be an array/],
    ['{ "plugins": [', 'CONFIG_INVALID', /cannot read .*menagerie\.config\.json/],
    ['[]', 'CONFIG_INVALID', /should hold an object, got an array/],
  ])('%j is refused with %s', async (plugins, code, message) => {
    const cwd = config(plugins);
    await expect(openWorkspace({ dataDir: folder(), cwd })).rejects.toMatchObject({
      code,
      message: expect.stringMatching(message),
    });
  });

  it('a --config that does not exist is an error, no config at all is fine', async () => {
    expect(() => findConfigFile(folder(), 'missing.json')).toThrow(/does not exist/);
    expect(findConfigFile(folder())).toBeUndefined();
    expect((await loadConfig(undefined)).plugins).toEqual([]);
  });

  it('`menagerie plugins` lists built-ins and config plugins', async () => {
    const result = await runCli([
      '--data-dir',
      folder(),
      '--config',
      path.join(FIXTURES, 'menagerie.config.json'),
      'plugins',
      '--json',
    ]);
    expect(result.code).toBe(0);
    const listed = JSON.parse(result.stdout) as {
      plugins: { kind: string; name: string; source: string }[];
    };
    expect(listed.plugins).toContainEqual(
      expect.objectContaining({ kind: 'model', name: 'tiny-mlp', source: './tiny-model.js' }),
    );
    expect(listed.plugins).toContainEqual(
      expect.objectContaining({ kind: 'storage', name: 'menagerie:local-fs', source: 'builtin' }),
    );
  });
});
