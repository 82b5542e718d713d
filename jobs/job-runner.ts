import { spawn, type ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { isErrorCode, MenagerieError, type ErrorCode } from '../core/errors.js';
import {
  finalRunUpdate,
  parseJobEvent,
  toProgressUpdate,
  type JobEvent,
  type RunProgressUpdate,
} from './run-progress.js';
import type { TrackingStore } from '../tracking/tracking-store.js';
import type { HpValue } from '../plugin-api/hyperparameters.js';
import type { Split } from '../data/tables.js';
import type { ModelEvaluations } from '../registry/model-evaluations.js';
import { toEvaluationUpdate, type EvaluationProgressUpdate } from './evaluation-progress.js';

const DEFAULT_CLI = fileURLToPath(new URL('../bin/menagerie.js', import.meta.url));

export interface JobConfig {
  /** Jobs running at once (default 1: one training saturates two cores). */
  maxJobs?: number;
  /** How long a child may take to report its run id (default 60 s). */
  startTimeoutMs?: number;
  /** After SIGINT, how long a child may take to stop before SIGKILL (default 15 s). */
  killGraceMs?: number;
}

export interface TrainingJob {
  plugin: string;
  experiment: string;
  runName?: string;
  epochs: number;
  hyperparameters?: Record<string, HpValue>;
  seed?: number;
  batchSize?: number;
  /** Early-stopping patience; 0 turns early stopping off. */
  patience?: number;
  /** More CLI flags, e.g. `--batch-size=8` (tests). */
  extraArgs?: readonly string[];
}

export interface TuningJob {
  plugin: string;
  tuner: string;
  experiment: string;
  runName?: string;
  maxTrials: number;
  epochs: number;
  objective: string;
  direction: 'min' | 'max';
  seed?: number;
  extraArgs?: readonly string[];
}

export interface EvaluationJob {
  /** A `models:/` URI naming one version (`models:/faces/3`), so a moving alias cannot change it. */
  model: string;
  /** A folder the caller has confined (an absolute path), or a split of the catalogue. */
  data: { folder: string } | { split: Split };
  /** Recorded as who ran it (`api:write`). */
  user?: string;
  extraArgs?: readonly string[];
}

export type JobKind = 'training' | 'tuning' | 'evaluation';

export interface RunningJob {
  /** The run id, or the evaluation id. */
  id: string;
  kind: JobKind;
  pid: number;
}

/**
 * Training, tuning and evaluation jobs as child processes (`menagerie train|tune|evaluate
 * --progress-json`), so serving never stalls on them. A start resolves with the run id (the
 * evaluation id) once the child has created it; its progress lines go to `publish`
 * (`publishEvaluation`) until it exits, and then one final update with the status from the
 * database. Every kind shares the one job limit.
 *
 * ```ts
 * const jobs = createJobRunner({ dataDir, tracking, publish: (u) => hub.publish('runProgress', u) });
 * const runId = await jobs.startTraining({ plugin: 'cnn', experiment: 'faces', epochs: 10 });
 * await jobs.cancel(runId); // SIGINT: the run ends KILLED
 * ```
 */
export interface JobRunner {
  /** Throws JOB_LIMIT when `maxJobs` are running, JOB_START_FAILED when the child fails first. */
  startTraining(job: TrainingJob): Promise<string>;
  startTuning(job: TuningJob): Promise<string>;
  /** Resolves with the evaluation id once the child has created the evaluation (RUNNING). */
  startEvaluation(job: EvaluationJob): Promise<string>;
  /**
   * Stops a job this server started (SIGINT, then SIGKILL after the grace period) and waits
   * for it to exit. RUN_NOT_OWNED for runs of other processes or trials of a tuning job.
   */
  cancel(runId: string): Promise<void>;
  running(): RunningJob[];
  /** Stops every job, as `cancel` does; the server calls it on close. */
  shutdown(): Promise<void>;
}

interface Job {
  child: ChildProcess;
  kind: JobKind;
  /** The run or evaluation id, once the child has reported it. */
  id: string | null;
  trials: Set<string>;
  cancelled: boolean;
  lastError: string | null;
  stderr: string;
  exited: Promise<void>;
  /**
   * The child's own last update of its run or evaluation, held back until the child has
   * exited: a client told "finished" may start the next job at once, and its slot is free.
   */
  final: { run?: RunProgressUpdate; evaluation?: EvaluationProgressUpdate };
}

export function createJobRunner(options: {
  dataDir: string;
  /** The config file that lists plugins, passed on so children see the same plugins. */
  configFile?: string;
  tracking: TrackingStore;
  publish: (update: RunProgressUpdate) => void;
  /** Evaluations' rows: an evaluation job that dies is ended here. Needed for startEvaluation. */
  evaluations?: ModelEvaluations;
  publishEvaluation?: (update: EvaluationProgressUpdate) => void;
  config?: JobConfig;
  /** The CLI entry point (default bin/menagerie.js). */
  cli?: string;
}): JobRunner {
  const { tracking, publish } = options;
  const maxJobs = options.config?.maxJobs ?? 1;
  const startTimeoutMs = options.config?.startTimeoutMs ?? 60_000;
  const killGraceMs = options.config?.killGraceMs ?? 15_000;
  const jobs = new Set<Job>();

  function findJob(id: string): Job | undefined {
    return [...jobs].find((job) => job.id === id);
  }

  async function settle(job: Job, code: number | null, signal: NodeJS.Signals | null) {
    jobs.delete(job);
    if (job.id === null) return;
    const reason = job.lastError ?? `the job exited (${signal ?? `code ${code}`})`;
    if (job.kind === 'evaluation') return settleEvaluation(job.id, job, reason);
    let run;
    try {
      run = await tracking.getRun(job.id);
      if (run.status === 'RUNNING') {
        // Killed before it could end its run: end it here rather than leave it RUNNING.
        const status = job.cancelled ? 'KILLED' : 'FAILED';
        if (!job.cancelled) await tracking.setTag(job.id, 'menagerie.error', reason);
        await tracking.endRun(job.id, status);
        run = await tracking.getRun(job.id);
      }
    } catch {
      // The database is gone (the server is closing): the next start marks the run FAILED.
    }
    if (job.final.run && job.final.run.status === run?.status) return publish(job.final.run);
    publish(
      finalRunUpdate(
        job.id,
        run?.status ?? 'FAILED',
        job.lastError ?? (job.cancelled ? 'cancelled' : null),
      ),
    );
  }

  async function settleEvaluation(id: string, job: Job, reason: string) {
    let evaluation;
    try {
      evaluation = await options.evaluations!.get(id);
      // Killed before it could end its evaluation: end it here rather than leave it RUNNING.
      if (evaluation.status === 'RUNNING')
        evaluation = await options.evaluations!.end(
          id,
          job.cancelled ? 'KILLED' : 'FAILED',
          job.cancelled ? 'cancelled' : reason,
        );
    } catch {
      // The database is gone (the server is closing): the next start marks it FAILED.
    }
    if (job.final.evaluation && job.final.evaluation.status === evaluation?.status)
      return options.publishEvaluation?.(job.final.evaluation);
    options.publishEvaluation?.({
      evaluationId: id,
      status: evaluation?.status ?? 'FAILED',
      done: evaluation?.done ?? null,
      total: evaluation?.total ?? null,
      message: evaluation?.error ?? job.lastError,
      final: true,
    });
  }

  function start(kind: JobKind, args: string[]): Promise<string> {
    if (jobs.size >= maxJobs) {
      const busy = [...jobs].map((j) => j.id ?? 'starting').join(', ');
      throw new MenagerieError(
        'JOB_LIMIT',
        `${jobs.size} job(s) running (${busy}); this server runs at most ${maxJobs} at once`,
      );
    }
    const child = spawnJobChild(options, kind, args);
    let exit: (v: void) => void = () => {};
    const job: Job = {
      child,
      kind,
      id: null,
      trials: new Set(),
      cancelled: false,
      lastError: null,
      stderr: '',
      exited: new Promise((resolve) => (exit = resolve)),
      final: {},
    };
    jobs.add(job);

    return new Promise<string>((resolve, reject) => {
      let startError: MenagerieError | null = null;
      const fail = (error: MenagerieError) => {
        clearTimeout(timer);
        reject(error);
      };
      const timer = setTimeout(() => {
        child.kill('SIGKILL');
        fail(
          new MenagerieError(
            'JOB_START_FAILED',
            `the ${kind} job did not report its ${what(kind)} within ${startTimeoutMs / 1000} s${tail(job)}`,
          ),
        );
      }, startTimeoutMs);

      const onEvent = (event: JobEvent) => {
        const announced =
          kind === 'evaluation'
            ? event.event === 'evaluation' && event.evaluationId
            : event.event === 'run' && event.runId;
        if (announced && job.id === null) {
          job.id = announced;
          clearTimeout(timer);
          resolve(announced);
        } else if (event.event === 'trial-start') {
          job.trials.add(event.runId);
        } else if (event.event === 'error') {
          job.lastError = event.message;
          // Reported when the child has exited, so its slot is free by then.
          if (job.id === null) startError = new MenagerieError(codeOf(event.code), event.message);
        }
        if (job.id === null) return;
        const update = toProgressUpdate(event);
        if (update?.final && update.runId === job.id) job.final.run = update;
        else if (update) publish(update);
        const evaluation = toEvaluationUpdate(event);
        if (evaluation?.final && evaluation.evaluationId === job.id)
          job.final.evaluation = evaluation;
        else if (evaluation) options.publishEvaluation?.(evaluation);
      };
      createInterface({ input: child.stdout! }).on('line', (line) => {
        const event = parseJobEvent(line);
        if (event) onEvent(event);
      });
      child.stderr!.setEncoding('utf8').on('data', (chunk: string) => {
        job.stderr = (job.stderr + chunk).slice(-4000);
      });
      child.once('error', (error) => {
        job.lastError = error.message;
      });
      child.once('close', (code, signal) => {
        if (job.id === null) {
          jobs.delete(job);
          fail(
            startError ??
              new MenagerieError(
                'JOB_START_FAILED',
                `the ${kind} job exited (${signal ?? `code ${code}`}) before it started its ${what(kind)}${tail(job)}`,
              ),
          );
          exit();
          return;
        }
        void settle(job, code, signal).finally(() => exit());
      });
    });
  }

  async function stop(job: Job): Promise<void> {
    job.cancelled = true;
    job.child.kill('SIGINT');
    const timer = setTimeout(() => job.child.kill('SIGKILL'), killGraceMs);
    await job.exited;
    clearTimeout(timer);
  }

  return {
    startTraining: (job) => start('training', jobArgs.training(job)),
    startTuning: (job) => start('tuning', jobArgs.tuning(job)),

    startEvaluation(job) {
      if (!options.evaluations) {
        throw new Error('createJobRunner needs `evaluations` to run evaluation jobs');
      }
      return start('evaluation', jobArgs.evaluation(job));
    },

    async cancel(runId) {
      const job = findJob(runId);
      if (job) return stop(job);
      const parent = [...jobs].find((j) => j.trials.has(runId));
      if (parent) {
        throw new MenagerieError(
          'RUN_NOT_OWNED',
          `run ${runId} is a trial of tuning run ${parent.id}; cancel the tuning run`,
        );
      }
      const run = await tracking.getRun(runId);
      if (run.status !== 'RUNNING') {
        throw new MenagerieError('RUN_NOT_ACTIVE', `run ${runId} already ended ${run.status}`);
      }
      throw new MenagerieError(
        'RUN_NOT_OWNED',
        `run ${runId} was not started by this server (process ${run.ownerPid ?? '?'} on ` +
          `${run.hostname ?? '?'}); stop it where it runs (Ctrl-C)`,
      );
    },

    running() {
      return [...jobs]
        .filter((j) => j.id !== null)
        .map((j) => ({ id: j.id!, kind: j.kind, pid: j.child.pid ?? 0 }));
    },

    async shutdown() {
      await Promise.all([...jobs].map(stop));
    },
  };
}

/** Each kind's CLI arguments (before `--progress-json`), for child processes and queued jobs. */
export const jobArgs = {
  training: (job: TrainingJob): string[] => [
    `--plugin=${job.plugin}`,
    `--epochs=${job.epochs}`,
    `--experiment=${job.experiment}`,
    ...(job.runName !== undefined ? [`--run-name=${job.runName}`] : []),
    ...(job.seed !== undefined ? [`--seed=${job.seed}`] : []),
    ...(job.batchSize !== undefined ? [`--batch-size=${job.batchSize}`] : []),
    ...(job.patience !== undefined ? [`--patience=${job.patience}`] : []),
    ...Object.entries(job.hyperparameters ?? {}).map(([k, v]) => `--hp=${k}=${v}`),
    ...(job.extraArgs ?? []),
  ],
  tuning: (job: TuningJob): string[] => [
    `--plugin=${job.plugin}`,
    `--tuner=${job.tuner}`,
    `--experiment=${job.experiment}`,
    `--max-trials=${job.maxTrials}`,
    `--epochs=${job.epochs}`,
    `--objective=${job.objective}`,
    `--direction=${job.direction}`,
    ...(job.runName !== undefined ? [`--run-name=${job.runName}`] : []),
    ...(job.seed !== undefined ? [`--seed=${job.seed}`] : []),
    ...(job.extraArgs ?? []),
  ],
  evaluation: (job: EvaluationJob): string[] => [
    `--model=${job.model}`,
    ...('split' in job.data ? [`--split=${job.data.split}`] : [job.data.folder]),
    ...(job.user !== undefined ? [`--user=${job.user}`] : []),
    ...(job.extraArgs ?? []),
  ],
};

/** The CLI command of each kind. */
/**
 * A job's child process: `menagerie <command> … --progress-json` on this Node, in its own
 * process group (a Ctrl-C meant for the server reaches the child only through the server,
 * once, so the run still ends cleanly KILLED), its progress lines on stdout.
 */
export function spawnJobChild(
  options: { cli?: string; dataDir: string; configFile?: string },
  kind: keyof typeof COMMANDS,
  args: readonly string[],
  env: NodeJS.ProcessEnv = {},
): ChildProcess {
  return spawn(
    process.execPath,
    [
      options.cli ?? DEFAULT_CLI,
      '--data-dir',
      options.dataDir,
      ...(options.configFile ? ['--config', options.configFile] : []),
      COMMANDS[kind],
      ...args,
      // Ingest answers with its report (`--json`) rather than progress lines.
      ...(kind === 'ingest' ? [] : ['--progress-json']),
    ],
    {
      detached: true,
      stdio: ['ignore', 'pipe', 'pipe'],
      env: {
        ...process.env,
        TF_CPP_MIN_LOG_LEVEL: process.env.TF_CPP_MIN_LOG_LEVEL ?? '2',
        ...env,
      },
    },
  );
}

export const COMMANDS: Record<JobKind | 'trial' | 'ingest', string> = {
  trial: 'tune-trial',
  ingest: 'ingest',
  training: 'train',
  tuning: 'tune',
  evaluation: 'evaluate',
};

const what = (kind: JobKind) => (kind === 'evaluation' ? 'evaluation' : 'run');

function codeOf(code: string | undefined): ErrorCode {
  return code !== undefined && isErrorCode(code) ? code : 'JOB_START_FAILED';
}

function tail(job: Job): string {
  const last = job.stderr.trim().split('\n').slice(-3).join(' | ');
  return last ? `: ${last}` : '';
}
