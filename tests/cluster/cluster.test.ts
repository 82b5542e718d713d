import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { createClient, type Client } from 'graphql-ws';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { openWorkspace, type Workspace } from '../../cli/workspace.js';
import { writeDemoDataset } from '../../demo/demo-dataset.js';
import { searchProgress } from '../../jobs/distributed-tuning.js';
import type { RunProgressUpdate } from '../../jobs/run-progress.js';
import { createServer, type MenagerieServer } from '../../server/create-server.js';
import {
  databaseBackend,
  DATABASE_BACKENDS,
  SERVICE_START_TIMEOUT,
  serviceEnv,
  storeBackend,
  STORE_BACKENDS,
} from '../helpers/backends.js';
import { REPO_ROOT, tempDir } from '../helpers/fixtures.js';
import { waitFor } from '../helpers/wait-for.js';

const FIXTURES = path.resolve(import.meta.dirname, '../fixtures/plugins');
const BIN = path.join(REPO_ROOT, 'bin/menagerie.js');
const TOKEN = 'cluster-admin-token';
const MODEL = 'cluster';

interface Replica {
  server: MenagerieServer;
  workspace: Workspace;
  gql<T>(query: string, variables?: Record<string, unknown>): Promise<T>;
  predict(bytes: Buffer): Promise<{ label: string; version: number }>;
}

interface WorkerProcess {
  child: ChildProcess;
  log: string[];
  exited: Promise<void>;
}

// The scaled-out deployment on one machine: PostgreSQL, S3 (Ceph RGW) and Redis, two API
// replicas that share nothing but those, and two `menagerie worker` processes.
describe.runIf(DATABASE_BACKENDS.includes('postgres') && STORE_BACKENDS.includes('s3'))(
  'a cluster: 2 API replicas, 2 workers, PostgreSQL, S3 and Redis',
  () => {
    const { dir, remove } = tempDir('menagerie-cluster-');
    const gate = path.join(dir, 'gate');
    const prefix = `c${randomBytes(4).toString('hex')}`;
    const replicas: Replica[] = [];
    const workers: WorkerProcess[] = [];
    const clients: Client[] = [];
    let env: Record<string, string>;
    let configFile: string;
    let database: string;
    let store: string;

    beforeAll(async () => {
      database = (await databaseBackend('postgres').location({ fresh: true }))!;
      store = (await storeBackend('s3').url())!;
      const queueUrl = (await serviceEnv('redis')).MENAGERIE_QUEUE_URL!;
      configFile = path.join(dir, 'menagerie.config.json');
      fs.writeFileSync(
        configFile,
        JSON.stringify({
          plugins: [path.join(FIXTURES, 'tiny-model.js'), path.join(FIXTURES, 'gated-model.js')],
        }),
      );
      await writeDemoDataset({ dir: path.join(dir, 'src'), perClass: 6, size: 32, seed: 'c' });
      env = {
        MENAGERIE_QUEUE_URL: queueUrl,
        MENAGERIE_QUEUE_PREFIX: prefix,
        // Short locks: a killed worker's trial moves on within seconds, not 30.
        MENAGERIE_QUEUE_LOCK_MS: '2000',
        MENAGERIE_QUEUE_STALL_MS: '1000',
        MENAGERIE_TEST_GATE: gate,
      };
      for (const name of ['a', 'b']) {
        const workspace = await openWorkspace({
          dataDir: path.join(dir, name),
          config: configFile,
          database,
          store,
        });
        const server = await createServer({
          workspace,
          config: {
            port: 0,
            playground: false,
            logger: () => {},
            tokens: [{ role: 'admin', token: TOKEN }],
            anonymousLimits: { predicts: 0, predictsAtOnce: 0, requestsAtOnce: 0 },
            similarBackbone: null,
            computeEmbeddings: false,
            servingModel: MODEL,
            // Only a promotion's event can move the champion within this test.
            championPollMs: 600_000,
            ingestRoots: [dir],
            queueUrl,
            queue: { prefix, lockMs: 2000, stallMs: 1000, tuningParallelism: 2 },
            jobs: { maxJobs: 4, killGraceMs: 5000 },
          },
        });
        replicas.push(replica(server, workspace));
      }
      workers.push(...(await Promise.all(['w1', 'w2'].map(startWorker))));
    }, SERVICE_START_TIMEOUT);

    afterAll(async () => {
      await Promise.all(clients.map((c) => c.dispose()));
      for (const w of workers) w.child.kill('SIGTERM');
      await Promise.all(workers.map((w) => w.exited));
      await Promise.all(replicas.map((r) => r.server.close()));
      await Promise.all(replicas.map((r) => r.workspace.close()));
      remove();
    });

    async function startWorker(name: string) {
      const child = spawn(
        process.execPath,
        [
          BIN,
          ...['--data-dir', path.join(dir, name), '--config', configFile],
          ...['--database', database, '--store', store],
          'worker',
        ],
        { cwd: REPO_ROOT, env: { ...process.env, ...env }, stdio: ['ignore', 'ignore', 'pipe'] },
      );
      const log: string[] = [];
      child
        .stderr!.setEncoding('utf8')
        .on('data', (chunk: string) => log.push(...chunk.split('\n')));
      const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
      await waitFor(
        () => log.some((l) => l.includes('taking jobs')) || child.exitCode !== null,
        `worker ${name} to start`,
        60_000,
      );
      if (child.exitCode !== null) throw new Error(`worker ${name} exited: ${log.join('\n')}`);
      return { child, log, exited };
    }

    function replica(server: MenagerieServer, workspace: Workspace): Replica {
      const gql = async <T>(query: string, variables: Record<string, unknown> = {}) => {
        const response = await fetch(server.url, {
          method: 'POST',
          headers: { 'content-type': 'application/json', authorization: `Bearer ${TOKEN}` },
          body: JSON.stringify({ query, variables }),
        });
        const body = (await response.json()) as { data?: T; errors?: { message: string }[] };
        if (body.errors) throw new Error(JSON.stringify(body.errors));
        return body.data!;
      };
      const predict = async (bytes: Buffer) => {
        const form = new FormData();
        form.append(
          'operations',
          JSON.stringify({
            query: `mutation P($file: Upload!) { predict(file: $file) { label modelVersion { version } } }`,
            variables: { file: null },
          }),
        );
        form.append('map', JSON.stringify({ 0: ['variables.file'] }));
        form.append('0', new Blob([new Uint8Array(bytes)], { type: 'image/jpeg' }), 'x.jpg');
        const response = await fetch(server.url, {
          method: 'POST',
          headers: { 'apollo-require-preflight': 'true' },
          body: form,
        });
        const body = (await response.json()) as {
          data?: { predict: { label: string; modelVersion: { version: number } } };
          errors?: unknown[];
        };
        if (body.errors || !body.data) throw new Error(JSON.stringify(body.errors));
        return { label: body.data.predict.label, version: body.data.predict.modelVersion.version };
      };
      return { server, workspace, gql, predict };
    }

    function follow(replica: Replica, runId: string) {
      const client = createClient({
        url: replica.server.url.replace(/^http/, 'ws'),
        webSocketImpl: WebSocket,
        lazy: false,
      });
      clients.push(client);
      const updates: RunProgressUpdate[] = [];
      const ended = new Promise<void>((resolve, reject) => {
        client.subscribe<{ runProgress: RunProgressUpdate }>(
          {
            query: `subscription S($id: ID!) { runProgress(runId: $id) {
              runId parentRunId status epoch epochs batch batches message
            } }`,
            variables: { id: runId },
          },
          {
            next: (value) => updates.push(value.data!.runProgress),
            error: reject,
            complete: resolve,
          },
        );
      });
      return { updates, ended };
    }

    it('ingests through A, tunes over both workers through a worker’s death, and promotes through B for A', async () => {
      const [a, b] = replicas as [Replica, Replica];

      // Ingest through A; B sees the images (one database, one store).
      await a.gql(`mutation I($p: String!) { ingest(path: $p) }`, { p: path.join(dir, 'src') });
      const stats = await b.server.services.images.stats();
      expect(stats.totalCount).toBeGreaterThan(0);

      // A 4-trial search started through A, 2 trials in flight: one on each worker.
      const { startTuning } = await a.gql<{ startTuning: { id: string } }>(
        `mutation { startTuning(input: { plugin: "tiny-mlp-gated", tuner: "random", maxTrials: 4,
          epochs: 2, experiment: "cluster" }) { id } }`,
      );
      const runId = startTuning.id;
      const onA = follow(a, runId);
      const onB = follow(b, runId);

      // Both workers hold a trial at the gate (each has finished its epoch 0).
      const trialJob = (w: WorkerProcess) =>
        w.log.find((l) => l.includes(' started: pid'))?.match(/job trial\.\S+\.(trial-\d+)/)?.[1];
      await waitFor(
        () =>
          workers.every(trialJob) &&
          new Set(
            onB.updates
              .filter((u) => isEpochEnd(u, 1) && u.parentRunId === runId)
              .map((u) => u.runId),
          ).size === 2,
        'a trial at the gate on each worker',
        60_000,
      );
      const [doomed] = workers as [WorkerProcess, WorkerProcess];
      const lostTrial = trialJob(doomed)!;
      doomed.child.kill('SIGKILL');
      await doomed.exited;
      // As a supervisor would, start a replacement; the lost trial goes to whichever is free.
      const replacement = startWorker('w3').then((w) => workers.push(w));
      fs.writeFileSync(gate, '');

      await Promise.all([onA.ended, onB.ended, replacement]);
      expect(onB.updates.at(-1)).toMatchObject({ runId, status: 'FINISHED' });

      // Every trial exactly once to completion; the lost attempt ended, not finished.
      const children = await b.server.services.tracking.listChildRuns(runId);
      const finished = children.filter((c) => c.status === 'FINISHED');
      const trialIds = finished.map((c) => c.tags['menagerie.trial_id']).sort();
      expect(trialIds).toEqual(['trial-0001', 'trial-0002', 'trial-0003', 'trial-0004']);
      const lostAttempts = children.filter((c) => c.tags['menagerie.trial_id'] === lostTrial);
      expect(lostAttempts.map((c) => c.status).sort()).toEqual(
        expect.arrayContaining(['FINISHED']),
      );
      expect(lostAttempts.filter((c) => c.status !== 'FINISHED')).toHaveLength(1);
      const search = await searchProgress(b.workspace.database.db, runId);
      expect(search.trials.find((t) => t.trialId === lostTrial)?.attempts).toBe(2);

      // B's subscriber saw what A's did: every trial's epochs, from whichever worker.
      const key = (u: RunProgressUpdate) => JSON.stringify(u);
      expect(onB.updates.map(key).sort()).toEqual(onA.updates.map(key).sort());
      for (const trial of finished) {
        expect(
          onB.updates.some((u) => u.runId === trial.id && isEpochEnd(u, 2)),
          `epoch 2 of ${trial.tags['menagerie.trial_id']} on B`,
        ).toBe(true);
      }

      // Two versions; the first is champion everywhere.
      const [first, second] = finished as [(typeof finished)[0], (typeof finished)[0]];
      for (const run of [first, second]) {
        await a.gql(
          `mutation R($id: ID!) { registerModel(name: "${MODEL}", runId: $id) { version } }`,
          {
            id: run.id,
          },
        );
      }
      await a.gql(`mutation { promoteChampion(name: "${MODEL}", version: 1) { version } }`);
      const serving = (r: Replica) =>
        r.gql<{ serving: { model: { version: number } | null } }>(
          `{ serving { model { version } } }`,
        );
      await waitFor(
        async () => (await serving(b)).serving.model?.version === 1,
        'B serving version 1 after a promotion through A',
      );

      // Predicts over both replicas while B promotes version 2: none is lost.
      const image = fs.readFileSync(firstImage(path.join(dir, 'src')));
      const answers: { version: number }[] = [];
      let streaming = true;
      const stream = (async () => {
        for (let i = 0; streaming || i < 8; i++) {
          answers.push(await (i % 2 === 0 ? a : b).predict(image));
        }
      })();
      await waitFor(() => answers.length >= 4, 'predicts before the promotion');
      const promotedAt = performance.now();
      await b.gql(`mutation { promoteChampion(name: "${MODEL}", version: 2) { version } }`);
      await waitFor(
        async () => (await serving(a)).serving.model?.version === 2,
        'A serving version 2 after a promotion through B',
      );
      const swapMs = performance.now() - promotedAt;
      const before = answers.length;
      await waitFor(() => answers.length >= before + 4, 'predicts after the promotion');
      streaming = false;
      await stream;
      console.log(
        `cluster: A served B's promotion ${swapMs.toFixed(0)} ms after it; ${answers.length} predicts, none lost`,
      );
      expect(answers.every((x) => x.version === 1 || x.version === 2)).toBe(true);
      expect(answers.at(-1)?.version).toBe(2);
      expect(answers.at(-2)?.version).toBe(2);

      // /readyz names the database, the store and the queue.
      const ready = (await (await fetch(new URL('/readyz', a.server.url))).json()) as {
        checks: { name: string; ok: boolean }[];
      };
      expect(ready.checks.map((c) => [c.name, c.ok])).toEqual(
        expect.arrayContaining([
          ['database', true],
          ['store', true],
          ['queue', true],
        ]),
      );
    }, 180_000);
  },
);

/** An epoch's end (updates count epochs from 1; batch updates name their batch). */
function isEpochEnd(update: RunProgressUpdate, epoch: number): boolean {
  return update.epoch === epoch && update.batch === null;
}

function firstImage(root: string): string {
  for (const entry of fs.readdirSync(root, { withFileTypes: true, recursive: true })) {
    if (entry.isFile() && /\.(jpe?g|png)$/i.test(entry.name))
      return path.join(entry.parentPath, entry.name);
  }
  throw new Error(`no image under ${root}`);
}
