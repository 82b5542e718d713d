// Vitest globalSetup: installs what the PostgreSQL and S3 suites need (Debian packages,
// pgvector), so `npm test` (and so .ci/run) needs nothing installed by hand. Services are
// started lazily, by the first test file that needs one
// (tests/helpers/backends.ts), in a state folder of this run's own that every fork shares;
// at the end this stops them (by the pids recorded there) and removes the folder. With
// MENAGERIE_TEST_SERVICES_DIR set (say to a folder where `npm run services -- start` runs
// them), the services found running are used and left running.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { installCephS3 } from '../../dev-services/ceph-s3.js';
import { installPostgres } from '../../dev-services/postgres.js';
import { servicesStatus, stopServices, type ServiceName } from '../../dev-services/services.js';
import { DATABASE_BACKENDS, STORE_BACKENDS } from './backends.js';

export default async function setup(): Promise<() => Promise<void>> {
  // Installing is slow the first time on a machine (apt, the pgvector build): do it here,
  // once, before any test's timeout runs. Without root, the PostgreSQL and S3 suites fail
  // with dev-services' reason; MENAGERIE_TEST_BACKENDS=sqlite,local skips them.
  if (process.getuid?.() === 0) {
    const log = (msg: string) => console.error(`[dev-services] ${msg}`);
    if (DATABASE_BACKENDS.includes('postgres')) await installPostgres(log);
    if (STORE_BACKENDS.includes('s3')) await installCephS3(log);
  }
  const given = process.env.MENAGERIE_TEST_SERVICES_DIR;
  // Not under /root: the postgres user must reach the folder.
  const dir = given ?? fs.mkdtempSync(path.join(os.tmpdir(), 'menagerie-test-services-'));
  fs.chmodSync(dir, 0o755);
  process.env.MENAGERIE_TEST_SERVICES_DIR = dir; // the forks inherit it
  const running = async () =>
    (await servicesStatus(dir)).filter((s) => s.running).map((s) => s.service);
  const before = new Set<ServiceName>(await running());
  return async () => {
    const startedHere = (await running()).filter((s) => !before.has(s));
    if (startedHere.length > 0) await stopServices(dir, startedHere);
    if (!given) fs.rmSync(dir, { recursive: true, force: true });
  };
}
