import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { REPO_ROOT } from '../helpers/fixtures.js';

// The README's layout table, the dependency rules and the tree name the same folders in the
// same order, so a new folder cannot land without its rule and its line of documentation.
const readme = fs.readFileSync(path.join(REPO_ROOT, 'README.md'), 'utf8');
const table = readme.slice(readme.indexOf('## Layout'), readme.indexOf('## Benchmarks'));
const documented = [...table.matchAll(/^\| `([^`]+)\/`/gm)].map((m) => m[1]!);
const { LAYERS } = createRequire(import.meta.url)(
  path.join(REPO_ROOT, '.dependency-cruiser.cjs'),
) as { LAYERS: [string, string][] };
const NOT_LAYERS = ['client', 'dev-services', 'bench', 'tests'];

describe('the layout', () => {
  it('documents every layer in the order the dependency rules enforce', () => {
    expect(documented.filter((d) => !NOT_LAYERS.includes(d))).toEqual(LAYERS.map(([n]) => n));
  });

  it('has a folder for every documented line, and a line for every source folder', () => {
    const tracked = execFileSync('git', ['ls-files'], { cwd: REPO_ROOT, encoding: 'utf8' });
    const folders = new Set(
      tracked
        .split('\n')
        .filter((file) => file.includes('/') && !file.startsWith('.'))
        .map((file) => file.split('/')[0]!)
        .filter((name) => !['docs', 'scripts', 'bin'].includes(name)),
    );
    expect(folders).toEqual(new Set(documented));
  });
});
