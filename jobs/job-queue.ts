import { randomUUID } from 'node:crypto';
import { Queue, QueueEvents, type RedisOptions } from 'bullmq';
import { Redis } from 'ioredis';
import { isErrorCode, MenagerieError, type ErrorCode } from '../core/errors.js';
import type { ModelEvaluations } from '../registry/model-evaluations.js';
import { cancelSearch, searchProgress, startDistributedTuning } from './distributed-tuning.js';
import type { EvaluationProgressUpdate } from './evaluation-progress.js';
import type { JobConfig, JobKind, JobRunner, RunningJob } from './job-runner.js';
import { jobArgs } from './job-runner.js';
import type { RunProgressUpdate } from './run-progress.js';
import type { JobContext } from './tracked-training.js';

/** The one BullMQ queue: training, tuning trials and evaluations, told apart by job name. */
export const JOBS_QUEUE = 'menagerie-jobs';
/** Redis channel a cancel is published on; the worker running the job stops it. */
export const CANCEL_CHANNEL = 'menagerie:cancel';

/** Where the queue is and how long a lost worker's job waits before another takes it. */
export interface QueueConfig {
  /** `redis://host:port` (`MENAGERIE_QUEUE_URL`). */
  url: string;
  /**
   * How long a worker's lock on a job lasts without renewal, in ms (default 30 s,
   * `MENAGERIE_QUEUE_LOCK_MS`). The worker renews it every half of this while the job runs.
   */
  lockMs?: number;
  /** How often workers look for jobs whose lock expired, in ms (default 30 s, `MENAGERIE_QUEUE_STALL_MS`). */
  stallMs?: number;
  /** Key prefix in Redis (default `menagerie`, `MENAGERIE_QUEUE_PREFIX`): clusters sharing one Redis differ here. */
  prefix?: string;
}

/** What a queued job is: the CLI command's kind and its arguments. */
export interface QueuedJob {
  kind: JobKind | 'trial' | 'ingest';
  /** The command's arguments, without `--progress-json`. */
  args: string[];
  /** For trials: the tuning run and the trial. */
  searchRunId?: string;
  trialId?: string;
}

/** What a worker reports through `job.updateProgress`; replicas see it through QueueEvents. */
export type QueueProgress =
  | { type: 'started'; id: string }
  | { type: 'run'; update: RunProgressUpdate }
  | { type: 'evaluation'; update: EvaluationProgressUpdate }
  | { type: 'failed'; code?: string; message: string };

/** The queue settings from the environment, or null when `MENAGERIE_QUEUE_URL` is unset. */
export function queueConfigFromEnv(env: NodeJS.ProcessEnv = process.env): QueueConfig | null {
  const url = env.MENAGERIE_QUEUE_URL;
  if (!url) return null;
  return {
    url,
    ...(env.MENAGERIE_QUEUE_LOCK_MS && { lockMs: positiveMs('MENAGERIE_QUEUE_LOCK_MS', env) }),
    ...(env.MENAGERIE_QUEUE_STALL_MS && { stallMs: positiveMs('MENAGERIE_QUEUE_STALL_MS', env) }),
    ...(env.MENAGERIE_QUEUE_PREFIX && { prefix: env.MENAGERIE_QUEUE_PREFIX }),
  };
}

function positiveMs(name: string, env: NodeJS.ProcessEnv): number {
  const value = Number(env[name]);
  if (!Number.isSafeInteger(value) || value < 100) {
    throw new MenagerieError(
      'CONFIG_INVALID',
      `${name} should be whole milliseconds ≥ 100, got '${env[name]}'`,
    );
  }
  return value;
}

/**
 * ioredis options for a `redis://` URL. Workers' connections need `maxRetriesPerRequest:
 * null` (BullMQ's blocking commands must wait through a reconnect, not fail).
 */
export function redisOptions(url: string, options: { blocking?: boolean } = {}): RedisOptions {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw new MenagerieError(
      'CONFIG_INVALID',
      `the queue URL should be redis://host:port, got '${url}'`,
    );
  }
  if (parsed.protocol !== 'redis:' && parsed.protocol !== 'rediss:') {
    throw new MenagerieError(
      'CONFIG_INVALID',
      `the queue URL should be redis://host:port, got '${url}'`,
    );
  }
  const db = parsed.pathname.replace(/^\//, '');
  return {
    host: parsed.hostname,
    port: Number(parsed.port || 6379),
    ...(parsed.username && { username: decodeURIComponent(parsed.username) }),
    ...(parsed.password && { password: decodeURIComponent(parsed.password) }),
    ...(db && { db: Number(db) }),
    ...(parsed.protocol === 'rediss:' && { tls: {} }),
    ...(options.blocking && { maxRetriesPerRequest: null }),
  };
}

/** A plain connection (pub/sub, cancels), closed by the caller. */
export function redisClient(url: string): Redis {
  const client = new Redis({
    ...redisOptions(url),
    maxRetriesPerRequest: null,
    lazyConnect: false,
  });
  // Errors reach the commands that fail; an idle connection's reconnect noise is not ours.
  client.on('error', () => {});
  return client;
}

/** The jobs queue, for adding jobs (the server, `tune --distributed`, workers' next trials). */
export function openJobsQueue(config: QueueConfig): Queue<QueuedJob> {
  const queue = new Queue<QueuedJob>(JOBS_QUEUE, {
    connection: redisOptions(config.url),
    prefix: config.prefix ?? 'menagerie',
  });
  queue.on('error', () => {});
  return queue;
}

/**
 * Queues trials of a distributed search. The job id is the trial's, so a trial queued
 * twice (two workers reporting at once) is one job.
 */
export async function enqueueTrials(
  queue: Queue<QueuedJob>,
  searchRunId: string,
  trialIds: readonly string[],
): Promise<void> {
  for (const trialId of trialIds) {
    await queue.add(
      'trial',
      {
        kind: 'trial',
        args: [`--search=${searchRunId}`, `--trial=${trialId}`],
        searchRunId,
        trialId,
      },
      {
        jobId: `trial.${searchRunId}.${trialId}`,
        // Kept a day so the id still dedupes; a worker shut down mid-trial throws, and the
        // next attempt (another worker) takes the trial over.
        attempts: 3,
        removeOnComplete: { age: 86_400 },
        removeOnFail: { age: 86_400 },
      },
    );
  }
}

/** How long the job-limit lock lives if its holder dies before releasing it. */
const LIMIT_LOCK_MS = 10_000;
/** How long a start waits for another replica's start to release the lock. */
const LIMIT_LOCK_WAIT_MS = 15_000;
/** Deletes the lock only if this holder's token is still in it. */
const RELEASE_LOCK =
  "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) end return 0";

/**
 * The job runner of a scaled-out server (`MENAGERIE_QUEUE_URL` set): the same interface as
 * the child-process runner (jobs/job-runner.ts), but jobs go on the BullMQ queue and any
 * `menagerie worker` runs them. A start resolves once a worker's child has created the run
 * (or the evaluation); progress comes back through QueueEvents to `publish` on this replica.
 * A tuning job is a distributed search: its trials are queued at once, `tuningParallelism`
 * in flight. The job limit counts the whole cluster's queued and running jobs.
 *
 * ```ts
 * const jobs = createQueueJobRunner({ queue: { url: 'redis://127.0.0.1:6379' }, context, publish });
 * const runId = await jobs.startTraining({ plugin: 'cnn', experiment: 'faces', epochs: 10 });
 * ```
 */
export function createQueueJobRunner(options: {
  queue: QueueConfig;
  context: JobContext;
  evaluations?: ModelEvaluations;
  /** Delivers a worker's run progress to this replica's subscribers. */
  publish: (update: RunProgressUpdate) => void;
  publishEvaluation?: (update: EvaluationProgressUpdate) => void;
  config?: JobConfig & {
    /** Trials of one tuning search in flight at once (default 2). */
    tuningParallelism?: number;
  };
}): JobRunner & {
  ping(): Promise<void>;
  /** Ingests a folder the workers can read (already confined by the caller); its summary. */
  ingest(folder: string): Promise<string>;
} {
  const { context, publish } = options;
  const { tracking } = context;
  const maxJobs = options.config?.maxJobs ?? 1;
  const startTimeoutMs = options.config?.startTimeoutMs ?? 60_000;
  const killGraceMs = options.config?.killGraceMs ?? 15_000;
  const parallelism = options.config?.tuningParallelism ?? 2;
  const prefix = options.queue.prefix ?? 'menagerie';
  const queue = openJobsQueue(options.queue);
  const events = new QueueEvents(JOBS_QUEUE, {
    connection: redisOptions(options.queue.url),
    prefix,
  });
  events.on('error', () => {});
  const control = redisClient(options.queue.url);
  const listening = events.waitUntilReady();

  interface Waiter {
    resolve(id: string): void;
    reject(error: MenagerieError): void;
  }
  const waiters = new Map<string, Waiter>();
  /** Jobs started through this replica and not ended yet, for metrics. */
  const mine = new Map<string, RunningJob>();

  events.on('progress', ({ jobId, data }) => {
    const progress = data as QueueProgress;
    if (typeof progress !== 'object' || progress === null) return;
    if (progress.type === 'started') waiters.get(jobId)?.resolve(progress.id);
    else if (progress.type === 'failed')
      waiters.get(jobId)?.reject(new MenagerieError(codeOf(progress.code), progress.message));
    else if (progress.type === 'run') {
      publish(progress.update);
      if (progress.update.final) mine.delete(progress.update.runId);
    } else if (progress.type === 'evaluation') {
      options.publishEvaluation?.(progress.update);
      if (progress.update.final) mine.delete(progress.update.evaluationId);
    }
  });
  events.on('failed', ({ jobId, failedReason }) => {
    waiters
      .get(jobId)
      ?.reject(
        new MenagerieError('JOB_START_FAILED', `the job failed on its worker: ${failedReason}`),
      );
  });

  async function checkLimit(): Promise<void> {
    const jobs = await queue.getJobs(['active', 'waiting', 'prioritized', 'delayed']);
    const searches = await context.db
      .selectFrom('tuning_searches')
      .select((eb) => eb.fn.countAll<number>().as('n'))
      .where('status', '=', 'RUNNING')
      .executeTakeFirstOrThrow();
    const busy = jobs.filter((j) => j?.name !== 'trial').length + Number(searches.n);
    if (busy >= maxJobs) {
      throw new MenagerieError(
        'JOB_LIMIT',
        `${busy} job(s) queued or running in the cluster; it runs at most ${maxJobs} at once`,
      );
    }
  }

  /**
   * Runs `body` (the limit check and what it admits) holding the cluster's job-limit lock,
   * so two replicas starting at once cannot both pass a count that admits one. A lock
   * left by a killed replica expires after LIMIT_LOCK_MS.
   */
  async function underLimitLock<T>(body: () => Promise<T>): Promise<T> {
    const key = `${prefix}:job-limit-lock`;
    const token = randomUUID();
    const deadline = Date.now() + LIMIT_LOCK_WAIT_MS;
    while ((await control.set(key, token, 'PX', LIMIT_LOCK_MS, 'NX')) !== 'OK') {
      if (Date.now() > deadline) {
        throw new MenagerieError(
          'JOB_LIMIT',
          `another replica has been starting a job for ${LIMIT_LOCK_WAIT_MS / 1000} s; try again`,
        );
      }
      await new Promise((resolve) => setTimeout(resolve, 25));
    }
    try {
      return await body();
    } finally {
      await control.eval(RELEASE_LOCK, 1, key, token).catch(() => {});
    }
  }

  async function start(kind: JobKind, args: string[]): Promise<string> {
    await listening;
    const jobId = `${kind}.${randomUUID()}`;
    const waitForStart = () =>
      new Promise<string>((resolve, reject) => {
        const timer = setTimeout(() => {
          waiters.delete(jobId);
          // Nobody took it: leave no job behind to start long after the caller gave up.
          void queue.remove(jobId).catch(() => {});
          reject(
            new MenagerieError(
              'JOB_START_FAILED',
              `no worker started the ${kind} job within ${startTimeoutMs / 1000} s; is \`menagerie worker\` running?`,
            ),
          );
        }, startTimeoutMs);
        waiters.set(jobId, {
          resolve: (id) => {
            clearTimeout(timer);
            waiters.delete(jobId);
            resolve(id);
          },
          reject: (error) => {
            clearTimeout(timer);
            waiters.delete(jobId);
            reject(error);
          },
        });
      });
    const started = await underLimitLock(async () => {
      await checkLimit();
      const waiting = waitForStart();
      waiting.catch(() => {}); // awaited below; a failed add must not leave it unhandled
      await queue.add(
        kind,
        { kind, args },
        { jobId, removeOnComplete: { age: 3600 }, removeOnFail: { age: 86_400 } },
      );
      return { waiting };
    });
    const id = await started.waiting;
    mine.set(id, { id, kind, pid: 0 });
    return id;
  }

  return {
    startTraining: (job) => start('training', jobArgs.training(job)),
    startEvaluation: (job) => start('evaluation', jobArgs.evaluation(job)),

    async startTuning(job) {
      await listening;
      const { runId, queued } = await underLimitLock(async () => {
        await checkLimit();
        return startDistributedTuning(context, {
          plugin: job.plugin,
          tuner: job.tuner,
          experiment: job.experiment,
          maxTrials: job.maxTrials,
          epochs: job.epochs,
          objective: job.objective,
          direction: job.direction,
          parallelism,
          ...(job.runName !== undefined && { runName: job.runName }),
          ...(job.seed !== undefined && { seed: job.seed }),
        });
      });
      await enqueueTrials(queue, runId, queued);
      mine.set(runId, { id: runId, kind: 'tuning', pid: 0 });
      return runId;
    },

    async cancel(runId) {
      const run = await tracking.getRun(runId);
      if (run.status !== 'RUNNING') {
        throw new MenagerieError('RUN_NOT_ACTIVE', `run ${runId} already ended ${run.status}`);
      }
      if (run.parentRunId) {
        throw new MenagerieError(
          'RUN_NOT_OWNED',
          `run ${runId} is a trial of tuning run ${run.parentRunId}; cancel the tuning run`,
        );
      }
      const search = await searchProgress(context.db, runId).catch(() => null);
      if (search) await cancelSearch(context, runId);
      // Whichever worker runs it (or a trial of it) stops its child with SIGINT.
      await control.publish(`${prefix}:${CANCEL_CHANNEL}`, runId);
      const deadline = Date.now() + killGraceMs + 15_000;
      while (Date.now() < deadline) {
        if ((await tracking.getRun(runId)).status !== 'RUNNING') return;
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
      throw new MenagerieError(
        'JOB_START_FAILED',
        `run ${runId} did not stop within ${Math.round((killGraceMs + 15_000) / 1000)} s of its cancel`,
      );
    },

    running: () => [...mine.values()],

    async ping() {
      await control.ping();
    },

    async ingest(folder) {
      await listening;
      const job = await queue.add(
        'ingest',
        { kind: 'ingest', args: [folder, '--json'] },
        {
          jobId: `ingest.${randomUUID()}`,
          removeOnComplete: { age: 3600 },
          removeOnFail: { age: 86_400 },
        },
      );
      try {
        return (await job.waitUntilFinished(events)) as string;
      } catch (error) {
        const message = error instanceof Error ? error.message : String(error);
        const coded = /^([A-Z][A-Z0-9_]+): (.*)$/s.exec(message);
        throw coded && isErrorCode(coded[1]!)
          ? new MenagerieError(coded[1]!, coded[2]!)
          : new MenagerieError('JOB_START_FAILED', `the ingest failed on its worker: ${message}`);
      }
    },

    async shutdown() {
      // Jobs belong to the cluster: they run on, only this replica's connections close.
      for (const waiter of waiters.values())
        waiter.reject(new MenagerieError('JOB_START_FAILED', 'the server is closing'));
      await Promise.allSettled([events.close(), queue.close(), control.quit()]);
    },
  };
}

function codeOf(code: string | undefined): ErrorCode {
  return code !== undefined && isErrorCode(code) ? code : 'JOB_START_FAILED';
}
