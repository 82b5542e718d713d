// The served side of the load benchmarks (soak, query-flood): a demo workspace with two
// registered versions of the reference CNN, and `menagerie serve` over it in a child process.
import { spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import { openWorkspace } from '../cli/workspace.js';
import { ingestImages } from '../data/ingest/ingest.js';
import { writeDemoDataset } from '../demo/demo-dataset.js';
import { registerModelArtifact } from '../registry/register-model.js';
import { runEmbeddingJob } from '../serving/embedding-job.js';
import { loadServedModel } from '../serving/served-model.js';
import { REFERENCE_MODEL_NAME, registerReferenceChampion } from './reference-champion.js';

const REPO_ROOT = path.resolve(import.meta.dirname, '..');
/** Covers TensorFlow's import and the champion's load and warm-up. */
const START_TIMEOUT_MS = 180_000;

/**
 * A data directory as a user would have it after `npm run demo`: procedural cat/dog/wild
 * faces ingested, the reference CNN registered twice as `faces` (versions 1 and 2, the
 * first the champion) and both embedded, so the server starts with nothing to compute.
 */
export async function prepareServedWorkspace(
  dataDir: string,
  options: { perClass: number },
): Promise<{ images: number; versions: [number, number] }> {
  const source = path.join(dataDir, 'demo-data');
  await writeDemoDataset({ dir: source, perClass: options.perClass, seed: 'bench' });
  const workspace = await openWorkspace({ dataDir });
  try {
    const ingested = await ingestImages(workspace, { source });
    const { registry, version } = await registerReferenceChampion(workspace);
    const second = await registerModelArtifact(registry, workspace.plugins, {
      name: REFERENCE_MODEL_NAME,
      dir: path.join(dataDir, 'reference-cnn'),
    });
    for (const v of [version, second.version]) {
      // Similar-image search falls back to random images without them: a failure is said,
      // not fatal to a load benchmark.
      await runEmbeddingJob(
        {
          database: workspace.database,
          blobs: workspace.blobs,
          loadModel: async () =>
            loadServedModel(await registry.getModelVersion(REFERENCE_MODEL_NAME, v), workspace),
        },
        { name: REFERENCE_MODEL_NAME, version: v },
      ).catch((error: unknown) =>
        console.log(
          `embeddings of version ${v} failed (similar images will be random): ${String(error)}`,
        ),
      );
    }
    return { images: ingested.added, versions: [version, second.version] };
  } finally {
    await workspace.close();
  }
}

/** `menagerie serve` in a child process, its request log to /dev/null. */
export interface ServeProcess {
  /** The GraphQL endpoint. */
  url: string;
  origin: string;
  child: ChildProcess;
  /** SIGTERM (in-flight requests finish), SIGKILL after 20 s. */
  stop(): Promise<void>;
}

export function startServe(dataDir: string, args: readonly string[]): Promise<ServeProcess> {
  const bin = path.join(REPO_ROOT, 'bin', 'menagerie.js');
  const child = spawn(
    process.execPath,
    [
      bin,
      '--data-dir',
      dataDir,
      'serve',
      '--port',
      '0',
      '--no-playground',
      '--no-similar-features',
      ...args,
    ],
    { cwd: REPO_ROOT, stdio: ['ignore', 'ignore', 'pipe'] },
  );
  const stderr: string[] = [];
  const stop = async () => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
    child.kill('SIGTERM');
    const timer = setTimeout(() => child.kill('SIGKILL'), 20_000);
    await exited;
    clearTimeout(timer);
  };
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`serve did not start in ${START_TIMEOUT_MS / 1000} s:\n${tail()}`));
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
        const url = found ? undefined : /menagerie: serving (http:\/\/\S+)/.exec(line)?.[1];
        if (url !== undefined) {
          found = true;
          clearTimeout(timer);
          resolve({ url, origin: new URL(url).origin, child, stop });
        }
      }
    });
    child.once('exit', (code, signal) => {
      clearTimeout(timer);
      if (!found) reject(new Error(`serve exited (${signal ?? code}) before serving:\n${tail()}`));
    });
  });
}

/**
 * One sample of `GET /metrics` (from loopback: no token): `name` or `name{labels}` as
 * printed, to its value.
 */
export async function scrapeMetrics(origin: string): Promise<Map<string, number>> {
  const text = await (await fetch(`${origin}/metrics`)).text();
  const samples = new Map<string, number>();
  for (const line of text.split('\n')) {
    const match = /^([a-zA-Z_:][\w:]*(?:\{[^}]*\})?) (\S+)$/.exec(line);
    if (match) samples.set(match[1]!, Number(match[2]));
  }
  return samples;
}

/** A multipart/form-data body built once: each part's headers, a blank line, its bytes. */
export function multipartBody(
  parts: { name: string; value: string | Buffer; filename?: string; type?: string }[],
  boundary = 'menagerie-bench-boundary',
): { body: Buffer; contentType: string } {
  const chunks: Buffer[] = [];
  for (const part of parts) {
    const disposition =
      `form-data; name="${part.name}"` +
      (part.filename === undefined ? '' : `; filename="${part.filename}"`);
    chunks.push(
      Buffer.from(
        `--${boundary}\r\nContent-Disposition: ${disposition}\r\n` +
          (part.type === undefined ? '' : `Content-Type: ${part.type}\r\n`) +
          '\r\n',
      ),
      Buffer.from(part.value),
      Buffer.from('\r\n'),
    );
  }
  chunks.push(Buffer.from(`--${boundary}--\r\n`));
  return { body: Buffer.concat(chunks), contentType: `multipart/form-data; boundary=${boundary}` };
}
