// An S3 endpoint from Ceph: one monitor, one in-memory OSD (memstore) and a RADOS Gateway,
// all on 127.0.0.1 with auth off and one replica. The cluster is new at every start: memstore
// keeps objects in memory only, so nothing survives a stop.
import { createHmac, randomUUID } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { request } from 'node:http';
import { join, resolve } from 'node:path';
import { ensurePackages } from './apt.js';
import { withLock } from './lock.js';
import { HOST, freePort, pickPort } from './ports.js';
import {
  isRunning,
  killAndWait,
  processRef,
  processStartTime,
  requireRoot,
  run,
  runOk,
  tailFile,
  waitFor,
  type ProcessRef,
} from './process.js';
import {
  handleFor,
  liveState,
  stopRecorded,
  writeState,
  type ServiceHandle,
  type ServiceState,
} from './state.js';

export const CEPH_PACKAGES = ['ceph-mon', 'ceph-osd', 'radosgw'];

export interface CephS3Options {
  dir: string;
  /** The gateway's HTTP port; a free one when omitted. */
  port?: number;
  bucket?: string;
  prefix?: string;
  region?: string;
  accessKeyId?: string;
  secretAccessKey?: string;
  /** Memory for the in-memory OSD, and so the most the store holds. */
  memoryBytes?: number;
  log?: (msg: string) => void;
}

export interface CephS3Handle extends ServiceHandle {
  endpoint: string;
  bucket: string;
  prefix: string;
  region: string;
  accessKeyId: string;
  secretAccessKey: string;
}

const DEFAULTS = {
  bucket: 'menagerie',
  prefix: 'dev',
  region: 'us-east-1',
  accessKeyId: 'menagerie-dev',
  secretAccessKey: 'menagerie-dev-secret',
  memoryBytes: 512 * 1024 * 1024,
};

// Every pool the gateway uses, created up front (see createPools for why).
const RGW_POOLS = [
  '.rgw.root',
  'default.rgw.control',
  'default.rgw.meta',
  'default.rgw.log',
  'default.rgw.buckets.index',
  'default.rgw.buckets.data',
  'default.rgw.buckets.non-ec',
];

export async function installCephS3(log: (msg: string) => void = () => {}): Promise<void> {
  requireRoot('s3');
  const installed = await ensurePackages(CEPH_PACKAGES);
  if (installed.length) log(`s3: installed ${installed.join(' ')}`);
}

/** Starts a fresh Ceph cluster with a gateway for `dir` (or reports the running one). */
export async function startCephS3(opts: CephS3Options): Promise<CephS3Handle> {
  opts = { ...opts, dir: resolve(opts.dir) }; // paths end up in configs read elsewhere
  const log = opts.log ?? (() => {});
  const o = { ...DEFAULTS, ...definedOnly(opts) };
  await installCephS3(log);
  return withLock(join(opts.dir, 's3.lock'), async () => {
    const live = liveState(opts.dir, 's3');
    if (live) return s3Handle(opts.dir, live, true);
    // Whatever is left of an earlier cluster (a daemon that survived, its files) goes.
    await stopRecorded(opts.dir, 's3');
    const state = await createCluster(opts.dir, o, log);
    writeState(opts.dir, state);
    return s3Handle(opts.dir, state, false);
  });
}

export async function stopCephS3(dir: string): Promise<boolean> {
  return stopRecorded(dir, 's3');
}

function definedOnly<T extends object>(o: T): Partial<T> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as Partial<T>;
}

function s3Handle(dir: string, state: ServiceState, alreadyRunning: boolean): CephS3Handle {
  const env = state.env;
  const url = new URL(state.url);
  return {
    ...handleFor(dir, state, alreadyRunning),
    endpoint: url.searchParams.get('endpoint') ?? '',
    bucket: url.host,
    prefix: url.pathname.replace(/^\//, ''),
    region: env.AWS_REGION ?? DEFAULTS.region,
    accessKeyId: env.AWS_ACCESS_KEY_ID ?? '',
    secretAccessKey: env.AWS_SECRET_ACCESS_KEY ?? '',
  };
}

async function createCluster(
  dir: string,
  o: typeof DEFAULTS & { port?: number },
  log: (msg: string) => void,
): Promise<ServiceState> {
  const t0 = Date.now();
  // Per-step times for the "ready" line: start-up time is what this module is tuned for.
  const steps: string[] = [];
  let tStep = t0;
  const mark = (what: string) => {
    steps.push(`${what} ${Date.now() - tStep}`);
    tStep = Date.now();
  };
  const cephDir = join(dir, 'ceph');
  await killLeftovers(cephDir);
  rmSync(cephDir, { recursive: true, force: true });
  for (const sub of ['mon/mon.a', 'osd/osd.0', 'run', 'log', 'rgw']) {
    mkdirSync(join(cephDir, sub), { recursive: true });
  }
  const conf = join(cephDir, 'ceph.conf');
  const setupLog = join(cephDir, 'log', 'setup.log');
  const daemonLog = (name: string) => join(cephDir, 'log', `${name}.log`);
  const pidFile = (name: string) => join(cephDir, 'run', `${name}.pid`);
  const monPort = await freePort();
  const rgwPort = await pickPort(o.port);
  if (o.port && rgwPort !== o.port) throw new Error(`s3: port ${o.port} is in use`);
  const fsid = randomUUID();
  const osdUuid = randomUUID();
  writeFileSync(conf, cephConf({ cephDir, fsid, monPort, rgwPort, memoryBytes: o.memoryBytes }));

  const started: ProcessRef[] = [];
  const fail = (why: string, logFile: string) => new Error(`s3: ${why}\n${tailFile(logFile)}`);
  const step = (what: string, cmd: string, args: string[], timeoutMs = 60_000) =>
    runOk(`s3: ${what}`, cmd, args, { logFile: setupLog, timeoutMs });
  /** Runs a self-daemonizing Ceph daemon and returns its pid from its pid file. */
  const daemon = async (name: string, cmd: string, args: string[]) => {
    const r = await run(cmd, ['-c', conf, ...args], { logFile: setupLog, timeoutMs: 60_000 });
    if (r.code !== 0) throw fail(`${cmd} exited with ${r.code ?? 'timeout'}`, daemonLog(name));
    const pid = await waitFor(`s3: ${name} pid file`, 10_000, () => readPid(pidFile(name))).catch(
      () => {
        throw fail(`${name} wrote no pid file`, daemonLog(name));
      },
    );
    const ref = processRef(name, pid);
    started.push(ref);
    return ref;
  };

  try {
    await step('monmaptool', 'monmaptool', [
      ...['--create', '--clobber', '--fsid', fsid],
      ...['--addv', 'a', `[v2:${HOST}:${monPort}]`, join(cephDir, 'monmap')],
    ]);
    await Promise.all([
      step('ceph-mon --mkfs', 'ceph-mon', [
        ...['-c', conf, '--mkfs', '-i', 'a', '--monmap', join(cephDir, 'monmap')],
      ]),
      // --no-mon-config: mkfs needs nothing from the monitor, so it need not wait for one.
      step('ceph-osd --mkfs', 'ceph-osd', [
        ...['-c', conf, '--no-mon-config', '-i', '0', '--mkfs', '--osd-uuid', osdUuid],
      ]),
    ]);
    mark('mkfs');
    const mon = await daemon('mon.a', 'ceph-mon', ['-i', 'a']);
    mark('mon');
    await createPools(conf, osdUuid, setupLog);
    mark('pools');
    const osd = await daemon('osd.0', 'ceph-osd', ['-i', '0']);
    mark('osd');
    const rgw = await daemon('client.rgw.a', 'radosgw', ['-n', 'client.rgw.a']);
    mark('rgw');

    await waitFor('s3: gateway', 60_000, async () => {
      for (const [ref, name] of [
        [mon, 'mon.a'],
        [osd, 'osd.0'],
        [rgw, 'client.rgw.a'],
      ] as const) {
        if (!isRunning(ref)) throw fail(`${name} exited during start`, daemonLog(name));
      }
      return (await httpRequest(rgwPort, 'GET', '/')).status === 200 ? true : undefined;
    }).catch((err: Error) => {
      throw err.message.includes('exited') ? err : fail(err.message, daemonLog('client.rgw.a'));
    });
    mark('gateway');

    await step('radosgw-admin user create', 'radosgw-admin', [
      ...['-c', conf, 'user', 'create', '--uid', 'menagerie', '--display-name', 'Menagerie'],
      ...['--access-key', o.accessKeyId, '--secret-key', o.secretAccessKey],
    ]);
    const made = await createBucket(rgwPort, o.bucket, o.accessKeyId, o.secretAccessKey);
    if (made.status !== 200) {
      throw fail(
        `creating bucket ${o.bucket} answered HTTP ${made.status}: ${made.body}`,
        daemonLog('client.rgw.a'),
      );
    }
    mark('user+bucket');
    log(`s3: ready in ${Date.now() - t0} ms (${steps.join(', ')} ms)`);

    const endpoint = `http://${HOST}:${rgwPort}`;
    const url = `s3://${o.bucket}/${o.prefix}?endpoint=${endpoint}`;
    return {
      service: 's3',
      port: rgwPort,
      url,
      env: {
        MENAGERIE_STORE_URL: url,
        AWS_ACCESS_KEY_ID: o.accessKeyId,
        AWS_SECRET_ACCESS_KEY: o.secretAccessKey,
        AWS_REGION: o.region,
      },
      // Gateway first, monitor last: each needs the ones after it to shut down cleanly.
      processes: [rgw, osd, mon].map((p) => ({ ...p, stopSignal: 'SIGTERM' as const })),
      logs: ['client.rgw.a', 'osd.0', 'mon.a'].map(daemonLog),
      startedAt: new Date().toISOString(),
    };
  } catch (err) {
    // Leave nothing running behind a failed start.
    for (const p of started.reverse()) await killAndWait(p).catch(() => {});
    throw err;
  }
}

function cephConf(c: {
  cephDir: string;
  fsid: string;
  monPort: number;
  rgwPort: number;
  memoryBytes: number;
}): string {
  return `# Written by dev-services at each start; the cluster lives only as long as its daemons.
[global]
fsid = ${c.fsid}
mon host = v2:${HOST}:${c.monPort}
public addr = ${HOST}
cluster addr = ${HOST}
# msgr2 only: with both, the monmap holds a v2 address the v1-only daemons cannot use.
ms bind msgr1 = false
ms bind ipv6 = false
auth cluster required = none
auth service required = none
auth client required = none
auth supported = none
# radosgw defaults to "secure" monitor connections, which auth none cannot provide.
ms mon client mode = crc secure
run dir = ${c.cephDir}/run
admin socket = ${c.cephDir}/run/$name.asok
pid file = ${c.cephDir}/run/$name.pid
log file = ${c.cephDir}/log/$name.log
mon data = ${c.cephDir}/mon/$name
osd data = ${c.cephDir}/osd/$name
osd objectstore = memstore
memstore device bytes = ${c.memoryBytes}
# One OSD: one replica, and few placement groups (the default 32 per pool exceeds the
# per-OSD limit once the gateway's pools exist).
osd pool default size = 1
osd pool default min size = 1
mon allow pool size one = true
mon warn on pool no redundancy = false
osd pool default pg num = 8
osd pool default pgp num = 8
osd pool default pg autoscale mode = off
# The OSD is placed in the CRUSH map by hand; on start it would try to move itself and to
# set a device class, both through commands that need a manager daemon.
osd crush update on start = false
osd class update on start = false
# Monitor proposals every 50 ms instead of 1 s: start-up takes a second instead of many.
paxos propose interval = 0.05
# A nearly full disk must not stop the monitor: its store is tiny and the data is in memory.
mon data avail crit = -1
mon data avail warn = 1

[client.rgw.a]
rgw frontends = beast endpoint=${HOST}:${c.rgwPort}
rgw data = ${c.cephDir}/rgw
`;
}

/**
 * Registers osd.0 in the OSD map and CRUSH map, and creates the gateway's pools, through one
 * librados session (Debian's python3-rados, a dependency of ceph-common).
 *
 * Why up front and in parallel: pools that the gateway creates one by one each cost a map
 * epoch, and a lone OSD sometimes misses a map and only asks again on its one-second tick,
 * so start-up took 1 to 4 s. Commands sent together land in one or two epochs, before the
 * OSD boots, and the gateway then finds every pool ready (0.6-0.9 s in all).
 */
async function createPools(conf: string, osdUuid: string, setupLog: string): Promise<void> {
  const script = `
import json, sys, threading, rados
conf, osd_uuid, pools = sys.argv[1], sys.argv[2], sys.argv[3:]
cluster = rados.Rados(conffile=conf)
cluster.connect(timeout=30)
errors = []
def command(**cmd):
    ret, _, err = cluster.mon_command(json.dumps(cmd), b'', timeout=60)
    if ret != 0:
        errors.append('%s %s: %s %s' % (cmd['prefix'], cmd.get('pool', ''), ret, err))
def together(cmds):
    threads = [threading.Thread(target=command, kwargs=c) for c in cmds]
    for t in threads: t.start()
    for t in threads: t.join()
command(prefix='osd new', uuid=osd_uuid, id=0)
together([dict(prefix='osd crush add', id=0, weight=1.0, args=['host=localhost', 'root=default'])]
         + [dict(prefix='osd pool create', pool=p, pg_num=8, pgp_num=8) for p in pools])
together([dict(prefix='osd pool application enable', pool=p, app='rgw') for p in pools])
cluster.shutdown()
sys.exit('\\n'.join(errors) if errors else 0)
`;
  // /usr/bin/python3, not whatever python3 is first on PATH (pyenv's has no rados module).
  await runOk('s3: create pools', '/usr/bin/python3', ['-c', script, conf, osdUuid, ...RGW_POOLS], {
    logFile: setupLog,
    timeoutMs: 90_000,
  });
}

/** Daemons of an earlier cluster in this folder whose state file is gone (found by pid file). */
async function killLeftovers(cephDir: string): Promise<void> {
  const runDir = join(cephDir, 'run');
  if (!existsSync(runDir)) return;
  for (const file of readdirSync(runDir).filter((f) => f.endsWith('.pid'))) {
    const pid = readPid(join(runDir, file));
    if (!pid) continue;
    let cmdline = '';
    try {
      cmdline = readFileSync(`/proc/${pid}/cmdline`, 'utf8');
    } catch {
      continue;
    }
    // Only our own daemons: their command line names this folder's ceph.conf.
    if (!cmdline.includes(join(cephDir, 'ceph.conf'))) continue;
    const startTime = processStartTime(pid);
    // SIGKILL: the cluster is about to be wiped, and a clean shutdown of one daemon can wait
    // for another that is already gone.
    if (startTime) {
      await killAndWait({ name: file.replace(/\.pid$/, ''), pid, startTime }, 'SIGKILL');
    }
  }
}

function readPid(file: string): number | undefined {
  if (!existsSync(file)) return undefined;
  const pid = Number(readFileSync(file, 'utf8').trim());
  return Number.isInteger(pid) && pid > 0 ? pid : undefined;
}

function httpRequest(
  port: number,
  method: string,
  path: string,
  headers: Record<string, string> = {},
): Promise<{ status?: number; body: string }> {
  return new Promise((resolve) => {
    const req = request({ host: HOST, port, method, path, headers, timeout: 2_000 }, (res) => {
      let body = '';
      res.setEncoding('utf8').on('data', (d: string) => (body += d));
      res.on('end', () => resolve({ status: res.statusCode, body }));
    });
    req.on('timeout', () => req.destroy());
    req.on('error', () => resolve({ body: '' }));
    req.end();
  });
}

/**
 * Creates the bucket with one signed PUT. AWS signature version 2 (an HMAC-SHA1 of five
 * lines), which the gateway accepts, keeps this free of an S3 client library.
 */
async function createBucket(
  port: number,
  bucket: string,
  accessKeyId: string,
  secretAccessKey: string,
): Promise<{ status?: number; body: string }> {
  const date = new Date().toUTCString();
  const signature = createHmac('sha1', secretAccessKey)
    .update(`PUT\n\n\n${date}\n/${bucket}`)
    .digest('base64');
  return httpRequest(port, 'PUT', `/${bucket}`, {
    Date: date,
    Authorization: `AWS ${accessKeyId}:${signature}`,
    'Content-Length': '0',
  });
}
