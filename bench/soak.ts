// `npm run bench -- soak [--minutes 10] [--concurrency 64] [--per-class 400]`: a soak of
// `menagerie serve` (a child process over a demo workspace, bench/served-workspace.ts). At
// the given concurrency, autocannon sends valid predictions (a read token: the anonymous
// limits are for strangers) and a few valid dashboard queries, beside 5% hostile uploads
// (corrupt, 12 MB, wrong type, broken multipart, anonymous) and 5% hostile queries
// (an alias flood, a depth bomb, a cost bomb, bad syntax, a 1,000-term order-by), while the
// champion moves between two registered versions every 30 s. It reports failed valid
// requests (the goal: 0), p50/p99 of valid predictions, hostile answers by code, and from
// /metrics the live tensors and RSS at start and end, each read after 5 s at rest (the
// goals: flat, under 10% growth).
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import autocannon from 'autocannon';
import sharp from 'sharp';
import { loadAverage, numberFlag, percentile, printFigure } from './report.js';
import { sampleJpegs } from './predict-inprocess.js';
import {
  multipartBody,
  prepareServedWorkspace,
  scrapeMetrics,
  startServe,
  type ServeProcess,
} from './served-workspace.js';

const READ_TOKEN = 'soak-read-token-0123456789';
const ADMIN_TOKEN = 'soak-admin-token-0123456789';
const PREDICT =
  'mutation Predict($f: Upload!) { predict(file: $f) { label confidence modelVersion { version } } }';
const DASHBOARD =
  'query Dashboard { labels { name counts { total } } imageStats { totalCount labelCount } ' +
  'images(first: 24) { totalCount edges { node { id thumbnailUrl label { name } } } } }';
const PROMOTE = 'mutation($v: Int!) { promoteChampion(name: "faces", version: $v) { version } }';
const PROMOTION_EVERY_MS = 30_000;
/** Valid predictions alone (to size the hostile rate), then the whole mix, uncounted. */
const WARMUP_S = 20;
const MIXED_WARMUP_S = 30;
const REST_MS = 5000;
/** Connections for the valid queries and for each hostile mix; the rest send predictions. */
const QUERY_CONNECTIONS = 2;
/** Uploads take longer (12 MB ones), and a refused one loses its connection: more of them. */
const HOSTILE_UPLOAD_CONNECTIONS = 10;
const HOSTILE_QUERY_CONNECTIONS = 3;
const HOSTILE_CONNECTIONS = HOSTILE_UPLOAD_CONNECTIONS + HOSTILE_QUERY_CONNECTIONS;
const MB = 1024 * 1024;

type Request = NonNullable<autocannon.Options['requests']>[number];

interface Figures {
  sent: number;
  ok: number;
  errors: number;
  timeouts: number;
  non2xx: number;
  mismatches: number;
  latencies: number[];
}

export async function run(args: string[]): Promise<void> {
  const minutes = numberFlag(args, '--minutes', 10);
  const concurrency = numberFlag(args, '--concurrency', 64);
  const perClass = numberFlag(args, '--per-class', 400);
  const predictConnections = concurrency - QUERY_CONNECTIONS - HOSTILE_CONNECTIONS;
  if (predictConnections < 1)
    throw new Error(`--concurrency must be over ${QUERY_CONNECTIONS + HOSTILE_CONNECTIONS}`);
  console.log(
    `soak: ${minutes} min at concurrency ${concurrency} (${predictConnections} predicting, ` +
      `${QUERY_CONNECTIONS} querying, ${HOSTILE_UPLOAD_CONNECTIONS} + ${HOSTILE_QUERY_CONNECTIONS} sending ` +
      `hostile uploads and queries, each 5% of the requests); ` +
      `${os.cpus().length} cores, load ${loadAverage()}`,
  );
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'menagerie-soak-'));
  let server: ServeProcess | undefined;
  try {
    const prepared = await prepareServedWorkspace(dataDir, { perClass });
    console.log(
      `workspace: ${prepared.images} demo images, faces versions ${prepared.versions.join(' and ')}`,
    );
    server = await startServe(dataDir, [
      '--token',
      `read:${READ_TOKEN}`,
      '--token',
      `admin:${ADMIN_TOKEN}`,
    ]);
    const predicts = await predictRequests();
    await firstAnswer(server.url, predicts[0]!);

    const warm = await load(server.url, predicts, predictConnections, WARMUP_S, isPrediction);
    const validRate = warm.ok / WARMUP_S;
    // 5% hostile uploads and 5% hostile queries of all requests: each 5/90 of the valid rate.
    const hostileRate = Math.max(HOSTILE_UPLOAD_CONNECTIONS, Math.round((validRate * 5) / 90));
    console.log(
      `warm-up: ${validRate.toFixed(1)} predictions/s; hostile uploads and queries at ` +
        `${hostileRate}/s each`,
    );

    const seconds = minutes * 60;
    const hostile = await hostileRequests();
    const hostileCodes = new Map<string, number>();
    const coded = (body: string) => {
      // A coded refusal, or (an anonymous upload within its limits) a prediction.
      const code =
        /"code":"([A-Z_]+)"/.exec(body)?.[1] ?? (isPrediction(body) ? 'answered' : 'no code');
      hostileCodes.set(code, (hostileCodes.get(code) ?? 0) + 1);
      return code !== 'no code' && code !== 'INTERNAL_SERVER_ERROR';
    };
    const mix = (duration: number) =>
      Promise.all([
        load(server!.url, predicts, predictConnections, duration, isPrediction),
        load(server!.url, [dashboardRequest()], QUERY_CONNECTIONS, duration, isDashboard, 10),
        load(
          server!.url,
          hostile.uploads,
          HOSTILE_UPLOAD_CONNECTIONS,
          duration,
          coded,
          hostileRate,
        ),
        load(server!.url, hostile.queries, HOSTILE_QUERY_CONNECTIONS, duration, coded, hostileRate),
      ]);
    // Caches, pools and first-use allocations of every path settle before the start figures.
    await mix(MIXED_WARMUP_S);
    hostileCodes.clear();
    // Memory is compared at rest, both times: what a leak keeps, not what requests in flight hold.
    const start = await scrapeAtRest(server.origin);
    const promotions = promoteEvery(server.url, prepared.versions, PROMOTION_EVERY_MS);
    const [valid, queries, uploadAttacks, queryAttacks] = await mix(seconds);
    const promoted = await promotions.stop();
    const end = await scrapeAtRest(server.origin);

    const failedValid =
      failed(valid) + failed(queries) + promoted.failed + (await healthFailures(server.origin));
    const total = valid.sent + queries.sent + uploadAttacks.sent + queryAttacks.sent;
    const share = (n: number) => `${((100 * n) / Math.max(1, total)).toFixed(1)}%`;
    console.log(
      `requests: ${total} (${valid.sent} predictions, ${queries.sent} dashboard queries, ` +
        `${uploadAttacks.sent} hostile uploads = ${share(uploadAttacks.sent)}, ` +
        `${queryAttacks.sent} hostile queries = ${share(queryAttacks.sent)}); ` +
        `${promoted.done} promotions`,
    );
    console.log(
      `valid predictions: ${valid.ok} ok, errors ${valid.errors}, timeouts ${valid.timeouts}, ` +
        `non-2xx ${valid.non2xx}, wrong bodies ${valid.mismatches}; dashboard queries: ` +
        `${queries.ok} ok, ${failed(queries)} failed; promotions failed: ${promoted.failed}`,
    );
    console.log(
      `hostile answers by code: ${[...hostileCodes]
        .sort((a, b) => b[1] - a[1])
        .map(([code, n]) => `${code} ${n}`)
        .join(', ')}; unanswered: errors ${uploadAttacks.errors + queryAttacks.errors}, ` +
        `timeouts ${uploadAttacks.timeouts + queryAttacks.timeouts} (a refused upload's ` +
        `connection is closed: autocannon loses the request it had queued on it)`,
    );
    printFigure('failed valid requests', failedValid, '(goal: 0)');
    printFigure('valid predict p50', percentile(valid.latencies, 50), 'ms');
    printFigure('valid predict p99', percentile(valid.latencies, 99), 'ms');
    printFigure('valid predictions', valid.ok / seconds, 'requests/s');
    const tensors = [start, end].map((m) => m.get('menagerie_tf_tensors') ?? Number.NaN);
    const rss = [start, end].map((m) => m.get('process_resident_memory_bytes') ?? Number.NaN);
    console.log(`tf numTensors: ${tensors[0]} at start, ${tensors[1]} at end (goal: flat)`);
    const growth = (100 * (rss[1]! - rss[0]!)) / rss[0]!;
    console.log(
      `RSS: ${(rss[0]! / MB).toFixed(0)} MB at start, ${(rss[1]! / MB).toFixed(0)} MB at end, ` +
        `${growth >= 0 ? '+' : ''}${growth.toFixed(1)}% (goal: < 10%)`,
    );
    const met = failedValid === 0 && tensors[1] === tensors[0] && growth < 10;
    console.log(`soak goals: ${met ? 'met' : 'missed'}`);
    if (!met) process.exitCode = 1;
  } finally {
    await server?.stop();
    fs.rmSync(dataDir, { recursive: true, force: true });
  }
}

const failed = (f: Figures) => f.errors + f.timeouts + f.non2xx + f.mismatches;
const isPrediction = (body: string) => body.startsWith('{"data":{"predict":{"label":');
const isDashboard = (body: string) =>
  body.startsWith('{"data":{"labels":') && !body.includes('"errors"');

/** Predictions of ten distinct AFHQ images (read at run time, never copied), with a token. */
async function predictRequests(): Promise<Request[]> {
  return sampleJpegs()
    .slice(0, 10)
    .map((file) => {
      const form = multipartBody([
        { name: 'operations', value: JSON.stringify({ query: PREDICT, variables: { f: null } }) },
        { name: 'map', value: JSON.stringify({ 0: ['variables.f'] }) },
        {
          name: '0',
          value: fs.readFileSync(file),
          filename: path.basename(file),
          type: 'image/jpeg',
        },
      ]);
      return {
        method: 'POST',
        headers: {
          'content-type': form.contentType,
          'apollo-require-preflight': 'true',
          authorization: `Bearer ${READ_TOKEN}`,
        },
        body: form.body,
      };
    });
}

function dashboardRequest(): Request {
  return {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ query: DASHBOARD, operationName: 'Dashboard' }),
  };
}

/** Hostile uploads and hostile queries: each must get a coded answer. */
async function hostileRequests(): Promise<{ uploads: Request[]; queries: Request[] }> {
  const jpeg = fs.readFileSync(sampleJpegs()[0]!);
  const gif = await sharp({
    create: { width: 32, height: 32, channels: 3, background: '#f80' },
  })
    .gif()
    .toBuffer();
  const upload = (
    bytes: Buffer,
    options: { token?: boolean; raw?: Buffer; type?: string } = {},
  ) => {
    const form = multipartBody([
      { name: 'operations', value: JSON.stringify({ query: PREDICT, variables: { f: null } }) },
      { name: 'map', value: JSON.stringify({ 0: ['variables.f'] }) },
      { name: '0', value: bytes, filename: 'x.jpg', type: 'image/jpeg' },
    ]);
    return {
      method: 'POST' as const,
      headers: {
        'content-type': options.type ?? form.contentType,
        'apollo-require-preflight': 'true',
        ...(options.token !== false && { authorization: `Bearer ${READ_TOKEN}` }),
      },
      body: options.raw ?? form.body,
    };
  };
  const query = (text: string, variables: Record<string, unknown> = {}) => ({
    method: 'POST' as const,
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ query: text, variables }),
  });
  const broken = multipartBody([
    { name: 'operations', value: JSON.stringify({ query: PREDICT, variables: { f: null } }) },
    { name: 'map', value: JSON.stringify({ 0: ['variables.f'] }) },
    { name: '0\r\nno colon here', value: jpeg, filename: 'x.jpg' },
  ]);
  let deep = 'id';
  for (let i = 0; i < 15; i++) deep = `label { images(first: 1) { edges { node { ${deep} } } } }`;
  const aliases = Array.from({ length: 3000 }, (_, i) => `a${i}: imageStats { labelCount }`);
  const truncated = upload(jpeg.subarray(0, Math.floor(jpeg.length / 2)));
  // The server refuses these and closes the connection: autocannon loses the request it
  // queued next on it, so each is followed by another truncated JPEG, not by a kind of its own.
  const closing = [
    upload(Buffer.alloc(12 * MB, 0xab)),
    upload(jpeg, { type: 'multipart/form-data' }),
    upload(jpeg, { raw: broken.body, type: broken.contentType }),
  ];
  const uploads = [
    truncated,
    upload(gif),
    upload(Buffer.from('%PDF-1.7 not pixels'.repeat(40))),
    upload(jpeg, { token: false }),
    ...closing.flatMap((request) => [request, truncated]),
  ];
  const queries = [
    query(`{ ${aliases.join(' ')} }`),
    query(`{ images(first: 1) { edges { node { ${deep} } } } }`),
    query('{ labels { name }'),
    query(
      'query($n: Int!) { images(first: $n) { edges { node { label { images(first: $n) { edges { node { id } } } } } } } }',
      { n: 1000 },
    ),
    query('query($o: [String!]) { runs(orderBy: $o) { totalCount } }', {
      o: Array.from({ length: 1000 }, (_, i) => `metrics.m${i} DESC`),
    }),
  ];
  return { uploads, queries };
}

async function firstAnswer(url: string, request: Request): Promise<void> {
  for (let attempt = 0; attempt < 120; attempt++) {
    const response = await fetch(url, {
      method: 'POST',
      headers: request.headers as Record<string, string>,
      body: request.body as Buffer,
    }).catch(() => null);
    if (response && isPrediction(await response.text())) return;
    await new Promise((resolve) => setTimeout(resolve, 1000));
  }
  throw new Error('the server never answered a prediction');
}

/** autocannon over `requests` in turn on each connection; `answered` checks each body. */
async function load(
  url: string,
  requests: Request[],
  connections: number,
  seconds: number,
  answered: (body: string) => boolean,
  overallRate?: number,
): Promise<Figures> {
  const latencies: number[] = [];
  const instance = autocannon({
    url,
    method: 'POST',
    requests,
    connections,
    duration: seconds,
    timeout: 30,
    verifyBody: answered,
    ...(overallRate !== undefined && { overallRate }),
  });
  instance.on('response', (_client, _status, _bytes, ms) => latencies.push(ms));
  const result = await instance;
  return {
    sent: result.requests.sent,
    ok: result['2xx'] - result.mismatches,
    errors: result.errors,
    timeouts: result.timeouts,
    non2xx: result.non2xx,
    mismatches: result.mismatches,
    latencies,
  };
}

/** Moves the champion between the two versions every `everyMs`, counting failures. */
function promoteEvery(url: string, versions: readonly [number, number], everyMs: number) {
  let done = 0;
  let failedCount = 0;
  let next = 1;
  let running: Promise<void> = Promise.resolve();
  const timer = setInterval(() => {
    const version = versions[next]!;
    next = 1 - next;
    running = fetch(url, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${ADMIN_TOKEN}` },
      body: JSON.stringify({ query: PROMOTE, variables: { v: version } }),
    })
      .then(async (response) => {
        const body = (await response.json()) as {
          data?: { promoteChampion?: { version: number } };
        };
        if (body.data?.promoteChampion?.version === version) done++;
        else failedCount++;
      })
      .catch(() => {
        failedCount++;
      });
  }, everyMs);
  return {
    async stop() {
      clearInterval(timer);
      await running;
      return { done, failed: failedCount };
    },
  };
}

/** /metrics once the server has been idle a while (its in-flight work done). */
async function scrapeAtRest(origin: string) {
  await new Promise((resolve) => setTimeout(resolve, REST_MS));
  return scrapeMetrics(origin);
}

/** The process answers its probes after the soak: 1 failure each if not. */
async function healthFailures(origin: string): Promise<number> {
  let failures = 0;
  for (const probe of ['/healthz', '/readyz']) {
    const status = await fetch(`${origin}${probe}`)
      .then((r) => r.status)
      .catch(() => 0);
    if (status !== 200) failures++;
  }
  return failures;
}
