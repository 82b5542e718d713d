// `npm run bench -- tuning-scale [--trials 8] [--epochs 2] [--per-class 24]`: one distributed
// search of N trials run by 1 `menagerie worker`, then the same search by 2, each worker's
// jobs limited to one TensorFlow thread. Prints wall times, the queue's own overhead per
// job (BullMQ's hand-over from one job's end to the next one's start, and the child
// process's start before its run exists), the load average, and last the ratio.
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { openWorkspace, type Workspace } from '../cli/workspace.js';
import { jobContext } from '../cli/commands/train.js';
import { ingestImages } from '../data/ingest/ingest.js';
import { writeDemoDataset } from '../demo/demo-dataset.js';
import { searchProgress, startDistributedTuning } from '../jobs/distributed-tuning.js';
import { enqueueTrials, openJobsQueue, type QueueConfig } from '../jobs/job-queue.js';
import { benchServices } from './bench-services.js';
import { loadAverage, numberFlag, printFigure, printRatio } from './report.js';

const BIN = fileURLToPath(new URL('../bin/menagerie.js', import.meta.url));

export async function run(args: string[]): Promise<void> {
  const trials = numberFlag(args, '--trials', 8);
  const epochs = numberFlag(args, '--epochs', 2);
  const perClass = numberFlag(args, '--per-class', 24);
  const services = await benchServices(['redis']);
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'menagerie-tuning-scale-'));
  let workspace: Workspace | undefined;
  try {
    await writeDemoDataset({ dir: path.join(dir, 'src'), perClass, size: 64, seed: 'scale' });
    // One SQLite file and one local store, shared by the workers on this machine.
    workspace = await openWorkspace({ dataDir: path.join(dir, 'data') });
    await ingestImages(workspace, { source: path.join(dir, 'src') });
    console.log(
      `tuning-scale: ${trials} trials of cnn (64 px, ${epochs} epochs, ${perClass} images per class), ` +
        `${os.cpus().length} cores, 1 TF thread per worker`,
    );

    const wall: Record<number, number> = {};
    for (const workers of [1, 2]) {
      const prefix = `bench${randomBytes(3).toString('hex')}`;
      const queue: QueueConfig = { url: services.env.MENAGERIE_QUEUE_URL!, prefix };
      const processes = await Promise.all(
        Array.from({ length: workers }, () => startWorker(dir, services.env, prefix)),
      );
      const jobs = openJobsQueue(queue);
      try {
        const started = performance.now();
        const { runId, queued } = await startDistributedTuning(jobContext(workspace), {
          plugin: 'cnn',
          tuner: 'random',
          maxTrials: trials,
          epochs,
          fixed: { input_size: 64, extra_conv_blocks: 0, batch_norm: false },
          experiment: `scale-${workers}`,
          parallelism: workers,
          seed: 7,
        });
        await enqueueTrials(jobs, runId, queued);
        for (;;) {
          const progress = await searchProgress(workspace.database.db, runId);
          if (progress.done) break;
          await new Promise((resolve) => setTimeout(resolve, 100));
        }
        wall[workers] = (performance.now() - started) / 1000;
        printFigure(`wall time, ${workers} worker(s)`, wall[workers], 's');
        console.log(`load average after ${workers} worker(s): ${loadAverage()}`);
        if (workers === 1) {
          const overhead = await queueOverhead(jobs, workspace, runId);
          printFigure(
            'queue hand-over per job (previous end to next start)',
            overhead.handOverMs,
            'ms',
          );
          printFigure('child start per job (job start to its run)', overhead.childStartMs, 'ms');
        }
      } finally {
        await jobs.obliterate({ force: true }).catch(() => {});
        await jobs.close();
        for (const p of processes) p.kill('SIGTERM');
        await Promise.all(processes.map((p) => new Promise((resolve) => p.once('exit', resolve))));
      }
    }
    printRatio('wall time, 2 workers vs 1', wall[2]!, wall[1]!, false);
  } finally {
    await workspace?.close();
    await services.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

async function startWorker(
  dir: string,
  env: Record<string, string>,
  prefix: string,
): Promise<ChildProcess> {
  const child = spawn(
    process.execPath,
    [BIN, '--data-dir', path.join(dir, 'data'), 'worker', '--tf-threads', '1'],
    { env: { ...env, MENAGERIE_QUEUE_PREFIX: prefix }, stdio: ['ignore', 'ignore', 'pipe'] },
  );
  await new Promise<void>((resolve, reject) => {
    let log = '';
    child.stderr!.setEncoding('utf8').on('data', (chunk: string) => {
      log += chunk;
      if (log.includes('taking jobs')) resolve();
    });
    child.once('exit', (code) => reject(new Error(`worker exited ${code}: ${log.slice(-2000)}`)));
  });
  return child;
}

/** From BullMQ's own timestamps and the runs' start times, one worker's jobs in order. */
async function queueOverhead(
  jobs: ReturnType<typeof openJobsQueue>,
  workspace: Workspace,
  runId: string,
): Promise<{ handOverMs: number; childStartMs: number }> {
  const done = (await jobs.getJobs(['completed']))
    .filter((j) => j && j.processedOn && j.finishedOn)
    .sort((a, b) => a.processedOn! - b.processedOn!);
  const handOvers = done.slice(1).map((j, i) => j.processedOn! - done[i]!.finishedOn!);
  const children = await workspace.tracking.listChildRuns(runId);
  const startOf = new Map(children.map((c) => [c.tags['menagerie.trial_id'], c.startTime]));
  const childStarts = done
    .map((j) => (startOf.get(j.data.trialId) ?? NaN) - j.processedOn!)
    .filter(Number.isFinite);
  const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / Math.max(1, xs.length);
  return { handOverMs: mean(handOvers), childStartMs: mean(childStarts) };
}
