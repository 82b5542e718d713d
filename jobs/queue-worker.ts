import type { ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';
import { Worker, type Job } from 'bullmq';
import type { ModelEvaluations } from '../registry/model-evaluations.js';
import type { IngestReport } from '../data/ingest/ingest.js';
import { finishTrial, searchProgress } from './distributed-tuning.js';
import { summarise } from './ingest-service.js';
import { toEvaluationUpdate } from './evaluation-progress.js';
import {
  CANCEL_CHANNEL,
  enqueueTrials,
  JOBS_QUEUE,
  openJobsQueue,
  redisClient,
  redisOptions,
  type QueueConfig,
  type QueuedJob,
  type QueueProgress,
} from './job-queue.js';
import { spawnJobChild } from './job-runner.js';
import { finalRunUpdate, parseJobEvent, toProgressUpdate } from './run-progress.js';
import type { JobContext } from './tracked-training.js';

export interface QueueWorkerOptions {
  queue: QueueConfig;
  /** The worker's workspace: its runs' rows are ended here when a child dies. */
  context: JobContext;
  evaluations: ModelEvaluations;
  /** The worker's data folder and config file, passed on to its children. */
  dataDir: string;
  configFile?: string;
  /** Jobs at once (default 1: one training saturates two cores). */
  concurrency?: number;
  /** After SIGINT, how long a child may take to stop before SIGKILL (default 15 s). */
  killGraceMs?: number;
  /** More environment for the children (TF_NUM_INTRAOP_THREADS…). */
  env?: NodeJS.ProcessEnv;
  cli?: string;
  log?: (line: string) => void;
}

export interface QueueWorker {
  /** Stops taking jobs; running ones are stopped and go back to the queue for another worker. */
  close(): Promise<void>;
  /** Resolves once the worker is connected and taking jobs. */
  ready(): Promise<void>;
}

interface Running {
  job: Job<QueuedJob>;
  child: ChildProcess;
  /** The run or evaluation id, once the child reported it. */
  id: string | null;
  /** Runs of tuning trials this child trains. */
  trials: Set<string>;
  cancelled: boolean;
}

/**
 * `menagerie worker`: takes jobs from the BullMQ queue and runs each in a child process,
 * the same CLI command with `--progress-json` the server forks on one machine, so this
 * process's event loop stays free to renew the job's lock. The child's progress lines go
 * to `job.updateProgress`, which every replica sees through QueueEvents. Children get
 * `MENAGERIE_EXIT_WITH_PARENT=1`: a worker killed outright takes its child with it, so a
 * trial taken over by another worker never runs to completion twice.
 *
 * ```ts
 * const worker = startQueueWorker({ queue: { url }, context: jobContext(workspace), evaluations, dataDir });
 * await worker.ready();
 * ```
 */
export function startQueueWorker(options: QueueWorkerOptions): QueueWorker {
  const { context } = options;
  const log = options.log ?? (() => {});
  const killGraceMs = options.killGraceMs ?? 15_000;
  const prefix = options.queue.prefix ?? 'menagerie';
  const running = new Set<Running>();
  const queue = openJobsQueue(options.queue);
  let closing = false;

  const cancels = redisClient(options.queue.url);
  const subscribed = cancels.subscribe(`${prefix}:${CANCEL_CHANNEL}`);
  cancels.on('message', (_channel: string, runId: string) => {
    for (const r of running) {
      if (r.id === runId || r.trials.has(runId) || r.job.data.searchRunId === runId) stop(r);
    }
  });

  function stop(r: Running) {
    if (r.cancelled) return;
    r.cancelled = true;
    r.child.kill('SIGINT');
    const timer = setTimeout(() => r.child.kill('SIGKILL'), killGraceMs);
    r.child.once('close', () => clearTimeout(timer));
  }

  async function process(job: Job<QueuedJob>): Promise<string | void> {
    const { kind, args } = job.data;
    if (kind === 'ingest') return ingest(job);
    let progress = Promise.resolve();
    const report = (p: QueueProgress) => {
      // In order, and never failing the job: progress is best effort.
      progress = progress.then(() => job.updateProgress(p)).catch(() => {});
    };
    const child = spawnJobChild(options, kind, args, {
      ...options.env,
      MENAGERIE_EXIT_WITH_PARENT: '1',
    });
    const r: Running = { job, child, id: null, trials: new Set(), cancelled: false };
    running.add(r);
    log(`job ${job.id} (${kind}) started: pid ${child.pid}`);
    let lastError: string | null = null;
    let stderr = '';
    createInterface({ input: child.stdout! }).on('line', (line) => {
      const event = parseJobEvent(line);
      if (!event) return;
      const announced =
        (event.event === 'run' && event.runId) ||
        (event.event === 'evaluation' && event.evaluationId);
      if (announced && r.id === null && kind !== 'trial') {
        r.id = announced;
        report({ type: 'started', id: announced });
      }
      if (event.event === 'trial-start') r.trials.add(event.runId);
      if (event.event === 'error') {
        lastError = event.message;
        if (r.id === null && kind !== 'trial')
          report({
            type: 'failed',
            message: event.message,
            ...(event.code && { code: event.code }),
          });
      }
      const update = toProgressUpdate(event);
      if (update) report({ type: 'run', update });
      const evaluation = toEvaluationUpdate(event);
      if (evaluation) report({ type: 'evaluation', update: evaluation });
    });
    child.stderr!.setEncoding('utf8').on('data', (chunk: string) => {
      stderr = (stderr + chunk).slice(-4000);
    });
    const [code, signal] = await new Promise<[number | null, NodeJS.Signals | null]>((resolve) =>
      child.once('close', (c, s) => resolve([c, s])),
    );
    running.delete(r);
    log(`job ${job.id} (${kind}) exited ${signal ?? code}`);
    const reason = lastError ?? `the job exited (${signal ?? `code ${code}`})${tail(stderr)}`;

    if (kind === 'trial') {
      const searchRunId = job.data.searchRunId!;
      if (closing && !r.cancelled) {
        await progress;
        // Shut down mid-trial: another worker takes the job (and the trial) over.
        throw new Error('the worker shut down; the trial goes back to the queue');
      }
      if (code !== 0) {
        // The child died before reporting: the search must not wait for it for ever.
        await finishTrial(context, searchRunId, job.data.trialId!, {
          status: 'FAILED',
          error: r.cancelled ? 'cancelled' : reason,
        }).catch(() => {});
      }
      const search = await searchProgress(context.db, searchRunId);
      await enqueueTrials(queue, searchRunId, search.queued);
      if (search.done) {
        const run = await context.tracking.getRun(searchRunId);
        report({ type: 'run', update: finalRunUpdate(searchRunId, run.status, null) });
      }
    } else if (r.id === null) {
      report({ type: 'failed', message: `the ${kind} job exited before it started: ${reason}` });
    } else if (kind === 'evaluation') {
      let evaluation = await options.evaluations.get(r.id).catch(() => null);
      if (evaluation?.status === 'RUNNING')
        evaluation = await options.evaluations.end(
          r.id,
          r.cancelled ? 'KILLED' : 'FAILED',
          r.cancelled ? 'cancelled' : reason,
        );
      report({
        type: 'evaluation',
        update: {
          evaluationId: r.id,
          status: evaluation?.status ?? 'FAILED',
          done: evaluation?.done ?? null,
          total: evaluation?.total ?? null,
          message: evaluation?.error ?? lastError,
          final: true,
        },
      });
    } else {
      let run = await context.tracking.getRun(r.id);
      if (run.status === 'RUNNING') {
        if (!r.cancelled) await context.tracking.setTag(r.id, 'menagerie.error', reason);
        await context.tracking.endRun(r.id, r.cancelled ? 'KILLED' : 'FAILED');
        run = await context.tracking.getRun(r.id);
      }
      report({
        type: 'run',
        update: finalRunUpdate(r.id, run.status, lastError ?? (r.cancelled ? 'cancelled' : null)),
      });
    }
    await progress;
  }

  /** `menagerie ingest <folder> --json` in a child; the job's value is its one-line summary. */
  async function ingest(job: Job<QueuedJob>): Promise<string> {
    const child = spawnJobChild(options, 'ingest', job.data.args, {
      ...options.env,
      MENAGERIE_EXIT_WITH_PARENT: '1',
    });
    let stdout = '';
    let stderr = '';
    child.stdout!.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk));
    child.stderr!.setEncoding('utf8').on('data', (chunk: string) => {
      stderr = (stderr + chunk).slice(-4000);
    });
    const code = await new Promise<number | null>((resolve) => child.once('close', resolve));
    log(`job ${job.id} (ingest) exited ${code}`);
    if (code !== 0) {
      // `error CODE: message`, as the CLI prints it: the code travels back to the caller.
      const printed = /error ([A-Z][A-Z0-9_]+): (.*)/.exec(stderr);
      throw new Error(
        printed ? `${printed[1]}: ${printed[2]}` : `ingest exited ${code}${tail(stderr)}`,
      );
    }
    return summarise(job.data.args[0]!, JSON.parse(stdout) as IngestReport);
  }

  const worker = new Worker<QueuedJob, string | void>(JOBS_QUEUE, process, {
    connection: redisOptions(options.queue.url, { blocking: true }),
    prefix,
    concurrency: options.concurrency ?? 1,
    lockDuration: options.queue.lockMs ?? 30_000,
    stalledInterval: options.queue.stallMs ?? 30_000,
    // A job whose worker died is handed on once; a second loss fails it.
    maxStalledCount: 2,
  });
  worker.on('error', (error) => log(`worker error: ${error.message}`));

  return {
    async ready() {
      await Promise.all([worker.waitUntilReady(), subscribed]);
    },
    async close() {
      closing = true;
      const closed = worker.close();
      for (const r of running) {
        r.child.kill('SIGINT');
        setTimeout(() => r.child.kill('SIGKILL'), killGraceMs).unref();
      }
      await closed;
      await Promise.allSettled([queue.close(), cancels.quit()]);
    },
  };
}

function tail(stderr: string): string {
  const last = stderr.trim().split('\n').slice(-3).join(' | ');
  return last ? `: ${last}` : '';
}
