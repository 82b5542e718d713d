// pgvector for PostgreSQL 15. Bookworm packages no 0.8.x, so it is built from Debian trixie's
// source package (fetched through private apt lists) against postgresql-server-dev-15.
import { existsSync, readFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { join } from 'node:path';
import { ensurePackages, fetchSourcePackage } from './apt.js';
import { withLock } from './lock.js';
import { cacheDir } from './paths.js';
import { runOk } from './process.js';

export const PG_MAJOR = 15;
export const PG_BIN = `/usr/lib/postgresql/${PG_MAJOR}/bin`;
export const VECTOR_CONTROL = `/usr/share/postgresql/${PG_MAJOR}/extension/vector.control`;
const SOURCE_SUITE = 'trixie';
export const PGVECTOR_BUILD_PACKAGES = [
  `postgresql-server-dev-${PG_MAJOR}`,
  'make',
  'gcc',
  'dpkg-dev',
];

/** The installed extension's version, e.g. "0.8.0", or undefined when it is not installed. */
export function vectorVersion(): string | undefined {
  if (!existsSync(VECTOR_CONTROL)) return undefined;
  const m = /^default_version\s*=\s*'([^']+)'/m.exec(readFileSync(VECTOR_CONTROL, 'utf8'));
  return m?.[1] ?? 'unknown';
}

/** Builds and installs pgvector unless vector.control is already there. Returns its version. */
export async function ensurePgvector(log: (msg: string) => void = () => {}): Promise<string> {
  const installed = vectorVersion();
  if (installed) return installed;
  return withLock(join(cacheDir(), 'pgvector.lock'), async () => {
    const again = vectorVersion();
    if (again) return again;
    let t = Date.now();
    const took = () => `${Date.now() - t} ms`;
    log(`pgvector: not installed; building it from Debian ${SOURCE_SUITE} sources`);
    await ensurePackages(PGVECTOR_BUILD_PACKAGES);
    log(`pgvector: build dependencies ready (${took()})`);
    t = Date.now();
    const src = await fetchSourcePackage('pgvector', SOURCE_SUITE, join(cacheDir(), 'pgvector'));
    log(`pgvector: fetched ${src} (${took()})`);
    t = Date.now();
    const args = [
      '-C',
      src,
      `PG_CONFIG=${PG_BIN}/pg_config`,
      // No -march=native (pgvector's default before 0.8): the build must run on any x86-64.
      'OPTFLAGS=',
      // No LLVM bitcode for JIT inlining: it doubles the build time (clang compiles every file
      // again) and Postgres only skips inlining without it.
      'with_llvm=no',
    ];
    await runOk('pgvector: make', 'make', [...args, `-j${Math.max(1, cpus().length)}`]);
    await runOk('pgvector: make install', 'make', [...args, 'install']);
    const version = vectorVersion();
    if (!version) throw new Error(`pgvector: make install left no ${VECTOR_CONTROL}`);
    log(`pgvector: ${version} built and installed (${took()})`);
    return version;
  });
}
