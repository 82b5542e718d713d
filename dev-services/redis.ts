// Redis 7 (Debian's redis-server) on 127.0.0.1 without persistence, for queues in tests.
import { existsSync, mkdirSync, readFileSync, rmSync } from 'node:fs';
import { createConnection } from 'node:net';
import { join, resolve } from 'node:path';
import { ensurePackages } from './apt.js';
import { withLock } from './lock.js';
import { HOST, pickPort } from './ports.js';
import { processRef, processStartTime, requireRoot, run, tailFile, waitFor } from './process.js';
import { handleFor, liveState, stopRecorded, writeState, type ServiceHandle } from './state.js';

export const REDIS_PACKAGES = ['redis-server'];

export interface RedisOptions {
  dir: string;
  port?: number;
  log?: (msg: string) => void;
}

export async function installRedis(log: (msg: string) => void = () => {}): Promise<void> {
  requireRoot('redis');
  const installed = await ensurePackages(REDIS_PACKAGES);
  if (installed.length) log(`redis: installed ${installed.join(' ')}`);
}

/** Starts redis-server for `dir` (or reports the one already running there). */
export async function startRedis(opts: RedisOptions): Promise<ServiceHandle> {
  opts = { ...opts, dir: resolve(opts.dir) }; // paths end up in configs read elsewhere
  await installRedis(opts.log);
  return withLock(join(opts.dir, 'redis.lock'), async () => {
    const live = liveState(opts.dir, 'redis');
    if (live) return handleFor(opts.dir, live, true);
    await stopRecorded(opts.dir, 'redis');

    const redisDir = join(opts.dir, 'redis');
    const pidFile = join(redisDir, 'redis.pid');
    const logFile = join(redisDir, 'redis.log');
    mkdirSync(redisDir, { recursive: true });
    rmSync(pidFile, { force: true });
    const port = await pickPort(opts.port);
    if (opts.port && port !== opts.port) throw new Error(`redis: port ${opts.port} is in use`);
    const fail = (why: string) => new Error(`redis: ${why} (port ${port})\n${tailFile(logFile)}`);

    // --daemonize forks after parsing the options: a bad option fails here, a port already
    // taken only shows in the log, hence the PING below.
    const r = await run(
      'redis-server',
      [
        ...['--bind', HOST, '--port', String(port)],
        ...['--save', '', '--appendonly', 'no'],
        ...['--daemonize', 'yes', '--pidfile', pidFile, '--logfile', logFile, '--dir', redisDir],
      ],
      { logFile },
    );
    if (r.code !== 0) throw fail(`redis-server exited with ${r.code}`);
    const pid = await waitFor('redis: pid file', 10_000, () => readPid(pidFile)).catch(() => {
      throw fail('no pid file after start');
    });
    await waitFor('redis: PING', 10_000, async () => {
      if (processStartTime(pid) === undefined) throw fail('redis-server exited during start');
      return (await ping(port)) ? true : undefined;
    }).catch((err: Error) => {
      throw err.message.startsWith('redis: redis-server exited') ? err : fail('no PONG');
    });

    const url = `redis://${HOST}:${port}`;
    const state = {
      service: 'redis' as const,
      port,
      url,
      env: { MENAGERIE_QUEUE_URL: url },
      processes: [{ ...processRef('redis', pid), stopSignal: 'SIGTERM' as const }],
      logs: [logFile],
      startedAt: new Date().toISOString(),
    };
    writeState(opts.dir, state);
    return handleFor(opts.dir, state, false);
  });
}

export async function stopRedis(dir: string): Promise<boolean> {
  return stopRecorded(dir, 'redis');
}

function readPid(file: string): number | undefined {
  if (!existsSync(file)) return undefined;
  const pid = Number(readFileSync(file, 'utf8').trim());
  return Number.isInteger(pid) && pid > 0 ? pid : undefined;
}

/** One inline PING, answered by +PONG once Redis serves commands. */
export function ping(port: number, timeoutMs = 500): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = createConnection({ port, host: HOST });
    let reply = '';
    const done = (ok: boolean) => {
      socket.destroy();
      resolve(ok);
    };
    socket.setTimeout(timeoutMs, () => done(false));
    socket.once('error', () => done(false));
    socket.once('connect', () => socket.write('PING\r\n'));
    socket.on('data', (d) => {
      reply += d.toString('latin1');
      if (reply.includes('\r\n')) done(reply.startsWith('+PONG'));
    });
  });
}
