import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import type { Locator } from 'playwright-core';
import { REPO_ROOT } from './fixtures.js';

/** Chromium for the browser tests, and the dashboard build they load. */

// MENAGERIE_CHROMIUM, when set, is the only browser tried: a wrong path is not papered over.
export const CHROMIUM = (
  process.env.MENAGERIE_CHROMIUM
    ? [process.env.MENAGERIE_CHROMIUM]
    : ['/usr/bin/chromium', '/usr/bin/chromium-browser']
).find((p) => fs.existsSync(p));
/** CI sets this: there a missing browser is a failure, not a skip. */
export const REQUIRE_BROWSER = process.env.MENAGERIE_REQUIRE_BROWSER === '1';
export const MISSING_CHROMIUM =
  'no chromium binary: apt-get install -y chromium, or set MENAGERIE_CHROMIUM to its path';
const CLIENT = path.join(REPO_ROOT, 'client');
export const DIST = path.join(CLIENT, 'dist');

/** The little of a canvas the page-side check reads (the root tsconfig has no DOM lib). */
interface CanvasLike {
  width: number;
  height: number;
  getContext(kind: '2d'): {
    getImageData(x: number, y: number, w: number, h: number): { data: ArrayLike<number> };
  };
}

/** Pixels of a chart canvas that are clearly coloured (a drawn series, not grey axes). */
export function colouredPixels(canvas: Locator): Promise<number> {
  return canvas.evaluate((element) => {
    const c = element as unknown as CanvasLike;
    const pixels = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
    let coloured = 0;
    for (let i = 0; i < pixels.length; i += 4) {
      if (pixels[i + 3]! > 0 && Math.abs(pixels[i]! - pixels[i + 2]!) > 60) coloured++;
    }
    return coloured;
  });
}

/** Rebuilds the dashboard when a source file is newer than the build. */
export function ensureBuilt(): void {
  const built = path.join(DIST, 'index.html');
  const builtAt = fs.existsSync(built) ? fs.statSync(built).mtimeMs : 0;
  const newest = (dir: string): number =>
    Math.max(
      0,
      ...fs.readdirSync(dir, { withFileTypes: true }).map((entry) => {
        const full = path.join(dir, entry.name);
        if (entry.isDirectory()) return entry.name === 'dist' ? 0 : newest(full);
        return fs.statSync(full).mtimeMs;
      }),
    );
  if (builtAt > newest(CLIENT)) return;
  const vite = path.join(REPO_ROOT, 'node_modules', 'vite', 'bin', 'vite.js');
  const result = spawnSync(
    process.execPath,
    [vite, 'build', '--config', path.join(CLIENT, 'vite.config.ts')],
    { cwd: REPO_ROOT, encoding: 'utf8' },
  );
  if (result.status !== 0)
    throw new Error(`vite build failed:\n${result.stdout}\n${result.stderr}`);
}
