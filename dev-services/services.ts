// All services of one state folder together: what the CLI and the Vitest setup call.
import { resolve } from 'node:path';
import { ensurePackages } from './apt.js';
import { CEPH_PACKAGES, startCephS3, type CephS3Options } from './ceph-s3.js';
import { PGVECTOR_BUILD_PACKAGES, vectorVersion } from './pgvector.js';
import { POSTGRES_PACKAGES, startPostgres } from './postgres.js';
import { canConnect } from './ports.js';
import { isRunning, requireRoot } from './process.js';
import { REDIS_PACKAGES, startRedis } from './redis.js';
import { readState, stopRecorded, type ServiceHandle, type ServiceName } from './state.js';

export type { ServiceHandle, ServiceName } from './state.js';
export { startPostgres, stopPostgres } from './postgres.js';
export { startRedis, stopRedis } from './redis.js';
export { startCephS3, stopCephS3, type CephS3Handle } from './ceph-s3.js';

export const ALL_SERVICES: readonly ServiceName[] = ['postgres', 'redis', 's3'];

const PACKAGES: Record<ServiceName, readonly string[]> = {
  postgres: POSTGRES_PACKAGES,
  redis: REDIS_PACKAGES,
  s3: CEPH_PACKAGES,
};

export interface StartOptions {
  dir: string;
  which?: readonly ServiceName[];
  s3?: Omit<CephS3Options, 'dir' | 'log'>;
  log?: (msg: string) => void;
}

export interface Started {
  handles: ServiceHandle[];
  /** Every variable of every service, ready for process.env or `export` lines. */
  env: Record<string, string>;
  /** The services this call started, as opposed to found running. */
  startedHere: ServiceName[];
}

export function parseServices(list: string): ServiceName[] {
  const names = list
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);
  for (const n of names) {
    if (!(ALL_SERVICES as readonly string[]).includes(n)) {
      throw new Error(`unknown service "${n}" (known: ${ALL_SERVICES.join(', ')})`);
    }
  }
  return names as ServiceName[];
}

/**
 * Starts `which` (all by default) for state folder `dir`, installing what is missing first.
 * Services already running there are reported, not restarted. If one fails, the ones this
 * call started are stopped again and the first error is thrown.
 */
export async function startServices(opts: StartOptions): Promise<Started> {
  const dir = resolve(opts.dir);
  const which = opts.which ?? ALL_SERVICES;
  const log = opts.log ?? (() => {});
  requireRoot('dev-services');
  // One apt-get run for everything missing is much faster than one per service.
  const packages = which.flatMap((s) => PACKAGES[s]);
  if (which.includes('postgres') && !vectorVersion()) packages.push(...PGVECTOR_BUILD_PACKAGES);
  const installed = await ensurePackages(packages);
  if (installed.length) log(`installed ${installed.join(' ')}`);

  const starters: Record<ServiceName, () => Promise<ServiceHandle>> = {
    postgres: () => startPostgres({ dir, log }),
    redis: () => startRedis({ dir, log }),
    s3: () => startCephS3({ ...opts.s3, dir, log }),
  };
  const results = await Promise.allSettled(
    which.map(async (s) => {
      const t = Date.now();
      const h = await starters[s]();
      log(`${s}: ${h.alreadyRunning ? 'already running' : `started in ${Date.now() - t} ms`}`);
      return h;
    }),
  );
  const handles = results.flatMap((r) => (r.status === 'fulfilled' ? [r.value] : []));
  const failure = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
  if (failure) {
    await Promise.all(handles.filter((h) => !h.alreadyRunning).map((h) => h.stop()));
    throw failure.reason;
  }
  return {
    handles,
    env: Object.assign({}, ...handles.map((h) => h.env)) as Record<string, string>,
    startedHere: handles.filter((h) => !h.alreadyRunning).map((h) => h.service),
  };
}

/** Stops the services recorded in `dir` by pid (from any process); returns those it stopped. */
export async function stopServices(
  dir: string,
  which: readonly ServiceName[] = ALL_SERVICES,
): Promise<ServiceName[]> {
  const stopped = await Promise.all(
    which.map(async (s) => ((await stopRecorded(resolve(dir), s)) ? [s] : [])),
  );
  return stopped.flat();
}

export interface ServiceStatus {
  service: ServiceName;
  running: boolean;
  /** Running, but its port does not accept connections (starting, hung). */
  unreachable?: boolean;
  pid?: number;
  port?: number;
  url?: string;
  env?: Record<string, string>;
  processes?: { name: string; pid: number; running: boolean }[];
  logs?: string[];
}

export async function servicesStatus(
  dir: string,
  which: readonly ServiceName[] = ALL_SERVICES,
): Promise<ServiceStatus[]> {
  return Promise.all(
    which.map(async (service): Promise<ServiceStatus> => {
      const state = readState(resolve(dir), service);
      if (!state) return { service, running: false };
      const processes = state.processes.map((p) => ({
        name: p.name,
        pid: p.pid,
        running: isRunning(p),
      }));
      const running = processes.every((p) => p.running);
      return {
        service,
        running,
        unreachable: running && !(await canConnect(state.port)),
        pid: state.processes[0]?.pid,
        port: state.port,
        url: state.url,
        env: state.env,
        processes,
        logs: state.logs,
      };
    }),
  );
}

/** `export NAME=value` lines for a POSIX shell, the AWS variables on one line. */
export function formatExports(env: Record<string, string>): string {
  const quote = (v: string) => (/^[\w@%+=:,./-]*$/.test(v) ? v : `'${v.replace(/'/g, `'\\''`)}'`);
  const aws = Object.keys(env).filter((k) => k.startsWith('AWS_'));
  const lines = Object.keys(env)
    .filter((k) => !k.startsWith('AWS_'))
    .map((k) => `export ${k}=${quote(env[k] ?? '')}`);
  if (aws.length) lines.push(`export ${aws.map((k) => `${k}=${quote(env[k] ?? '')}`).join(' ')}`);
  return lines.join('\n');
}
