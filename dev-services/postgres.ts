// PostgreSQL 15 with pgvector on 127.0.0.1, its data folder inside the state folder.
import {
  appendFileSync,
  existsSync,
  mkdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { join, resolve } from 'node:path';
import { ensurePackages } from './apt.js';
import { withLock } from './lock.js';
import { cacheDir } from './paths.js';
import { ensurePgvector, PG_BIN, PG_MAJOR } from './pgvector.js';
import { HOST, canConnect, freePort, pickPort } from './ports.js';
import {
  isRunning,
  processRef,
  processStartTime,
  requireRoot,
  run,
  runOk,
  tailFile,
} from './process.js';
import {
  handleFor,
  liveState,
  stopRecorded,
  writeState,
  type ServiceHandle,
  type ServiceState,
} from './state.js';

export const POSTGRES_PACKAGES = [`postgresql-${PG_MAJOR}`];
export const DATABASE = 'menagerie';
const USER = 'postgres';

export interface PostgresOptions {
  dir: string;
  port?: number;
  log?: (msg: string) => void;
}

// Postgres refuses to run as root, so every server command runs as the postgres user.
const asPostgres = (cmd: string, args: string[]) => ['-u', USER, '--', `${PG_BIN}/${cmd}`, ...args];

/** Installs PostgreSQL 15 and pgvector when missing. */
export async function installPostgres(log: (msg: string) => void = () => {}): Promise<void> {
  requireRoot('postgres');
  const installed = await ensurePackages(POSTGRES_PACKAGES);
  if (installed.length) log(`postgres: installed ${installed.join(' ')}`);
  await ensurePgvector(log);
}

/** Starts Postgres for `dir` (or reports the one already running there). */
export async function startPostgres(opts: PostgresOptions): Promise<ServiceHandle> {
  opts = { ...opts, dir: resolve(opts.dir) }; // paths end up in configs read elsewhere
  const log = opts.log ?? (() => {});
  await installPostgres(log);
  const pgDir = join(opts.dir, 'postgres');
  return withLock(join(opts.dir, 'postgres.lock'), async () => {
    const live = liveState(opts.dir, 'postgres') ?? adoptRunning(opts.dir, pgDir);
    if (live) return handleFor(opts.dir, live, true);
    await stopRecorded(opts.dir, 'postgres'); // a half-dead record: clear it

    const dataDir = join(pgDir, 'data');
    const logFile = join(pgDir, 'postgres.log');
    mkdirSync(pgDir, { recursive: true });
    await runOk('postgres: chown', 'chown', [`${USER}:${USER}`, pgDir]);
    await checkReachable(pgDir);
    if (!existsSync(join(dataDir, 'PG_VERSION'))) {
      const template = await ensureTemplate(log);
      rmSync(dataDir, { recursive: true, force: true });
      // A copy of a ready cluster (database and extension created) starts in a fraction of
      // the time initdb takes.
      await runOk('postgres: copy template', 'cp', ['-a', template, dataDir]);
    }

    const port = await pickPort(opts.port ?? previousPort(dataDir));
    if (opts.port && port !== opts.port) {
      throw new Error(`postgres: port ${opts.port} is in use`);
    }
    // The socket path must fit in sun_path (107 bytes); without room, TCP only.
    const socketDir = `${pgDir}/.s.PGSQL.${port}`.length < 100 ? pgDir : '';
    writeFileSync(
      join(dataDir, 'dev-services.conf'),
      `port = ${port}\nunix_socket_directories = '${socketDir.replace(/'/g, "''")}'\n`,
    );
    await runOk('postgres: chown', 'chown', ['-R', `${USER}:${USER}`, pgDir]);
    const started = await run(
      'runuser',
      asPostgres('pg_ctl', ['-D', dataDir, '-l', logFile, '-w', '-t', '60', 'start']),
    );
    if (started.code !== 0) {
      throw new Error(
        `postgres: pg_ctl start failed (exit ${started.code}) on port ${port}\n` +
          `${started.stdout}${started.stderr}\n${tailFile(logFile)}`,
      );
    }
    const pid = readPostmasterPid(dataDir);
    if (!pid) throw new Error(`postgres: started but no postmaster.pid\n${tailFile(logFile)}`);
    const state = stateFor(port, processRef('postgres', pid), logFile);
    writeState(opts.dir, state);
    return handleFor(opts.dir, state, false);
  });
}

export async function stopPostgres(dir: string): Promise<boolean> {
  return stopRecorded(dir, 'postgres');
}

function stateFor(
  port: number,
  ref: { name: string; pid: number; startTime: string },
  logFile: string,
): ServiceState {
  const url = `postgres://${USER}@${HOST}:${port}/${DATABASE}`;
  return {
    service: 'postgres',
    port,
    url,
    env: { MENAGERIE_DATABASE_URL: url },
    // SIGINT is Postgres's "fast" shutdown: roll back sessions, checkpoint, exit.
    processes: [{ ...ref, stopSignal: 'SIGINT' }],
    logs: [logFile],
    startedAt: new Date().toISOString(),
  };
}

/** The port the data folder was last started on, so URLs stay the same across restarts. */
function previousPort(dataDir: string): number | undefined {
  const conf = join(dataDir, 'dev-services.conf');
  if (!existsSync(conf)) return undefined;
  const m = /^port = (\d+)$/m.exec(readFileSync(conf, 'utf8'));
  return m?.[1] ? Number(m[1]) : undefined;
}

function readPostmasterPid(dataDir: string): number | undefined {
  const file = join(dataDir, 'postmaster.pid');
  if (!existsSync(file)) return undefined;
  const pid = Number(readFileSync(file, 'utf8').split('\n')[0]);
  return Number.isInteger(pid) && pid > 0 ? pid : undefined;
}

/** A server running on this data folder whose state file was lost: take it over. */
function adoptRunning(dir: string, pgDir: string): ServiceState | undefined {
  const dataDir = join(pgDir, 'data');
  const pid = readPostmasterPid(dataDir);
  if (!pid || processStartTime(pid) === undefined) return undefined;
  let comm = '';
  try {
    comm = readFileSync(`/proc/${pid}/comm`, 'utf8').trim();
  } catch {
    return undefined;
  }
  if (comm !== 'postgres') return undefined;
  // postmaster.pid line 4 is the port.
  const port = Number(readFileSync(join(dataDir, 'postmaster.pid'), 'utf8').split('\n')[3]);
  if (!port) return undefined;
  const state = stateFor(port, processRef('postgres', pid), join(pgDir, 'postgres.log'));
  if (!state.processes.every(isRunning)) return undefined;
  writeState(dir, state);
  return state;
}

/** The postgres user must be able to reach the folder (a state dir under /root is not). */
async function checkReachable(pgDir: string): Promise<void> {
  const r = await run('runuser', ['-u', USER, '--', 'test', '-w', pgDir]);
  if (r.code !== 0) {
    throw new Error(
      `postgres: user ${USER} cannot write ${pgDir}; pick a state folder whose parents are ` +
        `world-searchable (not under /root), e.g. --dir /var/tmp/menagerie-services`,
    );
  }
}

/**
 * A stopped, initialised data folder with the menagerie database and the vector extension,
 * kept in the machine-wide cache and copied into each new state folder.
 */
async function ensureTemplate(log: (msg: string) => void): Promise<string> {
  const vector = await ensurePgvector(log);
  const template = join(cacheDir(), `postgres-${PG_MAJOR}-vector-${vector}`);
  if (existsSync(join(template, 'PG_VERSION'))) return template;
  return withLock(`${template}.lock`, async () => {
    if (existsSync(join(template, 'PG_VERSION'))) return template;
    log('postgres: creating the template data folder (initdb)');
    const tmp = `${template}.tmp-${process.pid}`;
    try {
      await buildTemplate(tmp);
    } catch (err) {
      rmSync(tmp, { recursive: true, force: true });
      throw err;
    }
    await runOk('postgres: install template', 'mv', ['-T', tmp, template]);
    return template;
  });
}

/** initdb, settings, the database and the extension, into folder `tmp`; leaves it stopped. */
async function buildTemplate(tmp: string): Promise<void> {
  rmSync(tmp, { recursive: true, force: true });
  mkdirSync(tmp, { recursive: true });
  await runOk('postgres: chown', 'chown', [`${USER}:${USER}`, tmp]);
  await runOk(
    'postgres: initdb',
    'runuser',
    asPostgres('initdb', [
      '-D',
      tmp,
      '--no-sync',
      '-A',
      'trust',
      '-U',
      USER,
      '-E',
      'UTF8',
      '--no-locale',
    ]),
  );
  appendFileSync(
    join(tmp, 'postgresql.conf'),
    [
      '',
      '# menagerie dev-services: a throwaway server for development and tests, so',
      '# durability is traded for speed.',
      'fsync = off',
      'synchronous_commit = off',
      'full_page_writes = off',
      `listen_addresses = '${HOST}'`,
      '# port and unix_socket_directories, written at each start',
      "include_if_exists = 'dev-services.conf'",
      '',
    ].join('\n'),
  );
  // Inside the folder: pg_ctl writes the log as the postgres user.
  const logFile = join(tmp, 'template.log');
  const port = await freePort();
  writeFileSync(join(tmp, 'dev-services.conf'), `port = ${port}\nunix_socket_directories = ''\n`);
  await runOk('postgres: chown', 'chown', ['-R', `${USER}:${USER}`, tmp]);
  try {
    await runOk(
      'postgres: template start',
      'runuser',
      asPostgres('pg_ctl', ['-D', tmp, '-l', logFile, '-w', '-t', '60', 'start']),
    );
    const psql = (db: string, sql: string) =>
      runOk(`postgres: ${sql}`, `${PG_BIN}/psql`, [
        ...['-h', HOST, '-p', String(port), '-U', USER, '-d', db],
        ...['-v', 'ON_ERROR_STOP=1', '-q', '-c', sql],
      ]);
    await psql('postgres', `CREATE DATABASE ${DATABASE}`);
    await psql(DATABASE, 'CREATE EXTENSION vector');
  } catch (err) {
    throw new Error(`${(err as Error).message}\n${tailFile(logFile)}`);
  } finally {
    await run('runuser', asPostgres('pg_ctl', ['-D', tmp, '-m', 'fast', '-w', 'stop']));
  }
  if (await canConnect(port)) throw new Error('postgres: template server did not stop');
  rmSync(join(tmp, 'dev-services.conf'));
  rmSync(logFile, { force: true });
}
