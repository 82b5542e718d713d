// Where state and caches live. State is per folder (one set of servers each); the cache is
// machine-wide, because what it holds (a pgvector build, a template data dir) is too.
import { mkdirSync } from 'node:fs';
import { resolve } from 'node:path';

/** The default state folder: inside the repo's git-ignored .menagerie/ folder. */
export function defaultStateDir(): string {
  return resolve(process.env.MENAGERIE_SERVICES_DIR ?? '.menagerie/services');
}

/** Machine-wide cache: apt source lists, the pgvector source tree, the Postgres template. */
export function cacheDir(): string {
  const dir = resolve(process.env.MENAGERIE_SERVICES_CACHE ?? '/var/cache/menagerie-dev-services');
  mkdirSync(dir, { recursive: true });
  return dir;
}
