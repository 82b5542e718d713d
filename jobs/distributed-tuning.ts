import os from 'node:os';
import { PostgresAdapter, type Kysely, type Transaction } from 'kysely';
import { MenagerieError } from '../core/errors.js';
import type { Database } from '../data/tables.js';
import { HyperParameters, type HpValue } from '../plugin-api/hyperparameters.js';
import type { Oracle, TrialProposal } from '../plugin-api/plugin.js';
import type { PluginRegistry } from '../plugin-api/plugin-registry.js';
import { configKey } from '../plugin-api/search-space.js';
import { bestTrial, type TuningTrial } from '../training/tuning-loop.js';
import type { TrainingObserver } from '../training/training-observer.js';
import { runTrackedTraining, type JobContext } from './tracked-training.js';
import { trialTrainingOptions, type TrackedTuningOptions } from './tracked-tuning.js';

/** What every trial of a distributed search needs; stored with the search. JSON-safe. */
export interface SearchConfig {
  plugin: string;
  tuner: string;
  objective: string;
  direction: 'min' | 'max';
  maxTrials?: number;
  epochs: number;
  seed: number;
  executionsPerTrial: number;
  maxConsecutiveFailedTrials: number;
  fixed: Record<string, HpValue>;
  tunerOptions: Record<string, unknown>;
  experiment?: string;
  batchSize?: number;
  limitPerLabel?: number;
}

/** A trial as the search records it. QUEUED: proposed, waiting for a worker. */
export interface SearchTrial extends TrialProposal {
  status: 'QUEUED' | 'RUNNING' | 'COMPLETED' | 'FAILED';
  /** Times a worker claimed it: more than one means a worker was lost mid-trial. */
  attempts: number;
  /** The child runs of its attempts, the last one current. */
  runIds: string[];
  score?: number;
  trainedEpochs?: number;
  executionScores?: number[];
  error?: string;
}

interface SearchState {
  /** The oracle's own state(), after the last proposal it made. */
  oracle: unknown;
  trials: SearchTrial[];
  consecutiveFailures: number;
}

/** A search's settings, as `runTrackedTuning` takes them (no signal or callbacks: trials run elsewhere). */
export interface DistributedTuningOptions extends Omit<
  TrackedTuningOptions,
  'signal' | 'onRun' | 'onTrialStart' | 'onTrialEnd' | 'observer' | 'resume'
> {
  /** Trials in flight at most (the workers that can work on this search at once). */
  parallelism: number;
  /** Continue this distributed tuning run: trials not finished are queued again. */
  resume?: string;
}

/** A claimed trial: what to train, and the attempts before it that a lost worker left. */
export interface ClaimedTrial {
  config: SearchConfig;
  trial: SearchTrial;
  /** Child runs of earlier attempts: the caller ends those still RUNNING as KILLED. */
  earlierRuns: string[];
  /** Run ids of finished trials, to warm-start from (Hyperband promotions). */
  trialRuns: Record<string, string>;
}

export interface TrialOutcome {
  status: 'COMPLETED' | 'FAILED';
  score?: number;
  epochs?: number;
  executionScores?: number[];
  error?: string;
}

export interface SearchProgress {
  /** Trials proposed and waiting for a worker: enqueue them (idempotently, by trial id). */
  queued: string[];
  /** The search has ended; the tuning run with it. */
  done: boolean;
  status: 'RUNNING' | 'FINISHED' | 'FAILED' | 'KILLED';
}

/** Tags the tuning run of a distributed search, with its parallelism. */
export const DISTRIBUTED_TAG = 'menagerie.distributed';

/**
 * Tuning without a chief: the oracle's state lives in the `tuning_searches` row of the
 * tuning run and is changed only in a transaction holding that row's lock (`SELECT … FOR
 * UPDATE` on PostgreSQL, the write lock on SQLite). Starting a search proposes the first
 * `parallelism` trials; each finished trial is reported by the worker that ran it, which
 * proposes the next ones in the same transaction. A worker lost mid-trial leaves its
 * trial RUNNING: the queue hands the job to another worker, whose claim takes it over. A
 * trial reported twice counts once.
 *
 * An oracle with trials in flight may have nothing to propose yet (Hyperband waits for a
 * round before promoting): its answer is then discarded, not saved, and it is asked again
 * when the next trial is reported, so it never ends a search early.
 *
 * ```ts
 * const { runId, queued } = await startDistributedTuning(context, {
 *   plugin: 'menagerie:cnn', tuner: 'menagerie:random', maxTrials: 8, parallelism: 2,
 * });
 * for (const trialId of queued) await queue.add('trial', { runId, trialId }, { jobId: … });
 * // on a worker: menagerie tune-trial --search <runId> --trial <trialId>
 * ```
 */
export async function startDistributedTuning(
  context: JobContext,
  options: DistributedTuningOptions,
): Promise<{ runId: string; queued: string[] }> {
  const { tracking, db } = context;
  const parallelism = options.parallelism;
  if (!Number.isSafeInteger(parallelism) || parallelism < 1 || parallelism > 64) {
    throw new MenagerieError(
      'CONFIG_INVALID',
      `distributed tuning needs 1 to 64 trials in flight, got ${parallelism}`,
    );
  }
  if (options.resume) return resumeSearch(context, options.resume, parallelism);

  const model = context.plugins.get('model', options.plugin);
  const tuner = context.plugins.get('tuner', options.tuner);
  const objective = options.objective ?? 'val_accuracy';
  const config: SearchConfig = {
    plugin: model.name,
    tuner: tuner.name,
    objective,
    direction: options.direction ?? (objective.endsWith('loss') ? 'min' : 'max'),
    ...(options.maxTrials !== undefined && { maxTrials: options.maxTrials }),
    epochs: options.epochs ?? 5,
    seed: options.seed ?? 42,
    executionsPerTrial: options.executionsPerTrial ?? 1,
    maxConsecutiveFailedTrials: options.maxConsecutiveFailedTrials ?? 3,
    fixed: options.fixed ?? {},
    tunerOptions: options.tunerOptions ?? {},
    ...(options.experiment !== undefined && { experiment: options.experiment }),
    ...(options.batchSize !== undefined && { batchSize: options.batchSize }),
    ...(options.limitPerLabel !== undefined && { limitPerLabel: options.limitPerLabel }),
  };
  // Fails here, before any row exists, when the space or the tuner options are wrong.
  const oracle = createOracle(context.plugins, config);

  const experiment = await tracking.getOrCreateExperiment(options.experiment ?? 'default');
  const run = await tracking.createRun({
    experimentId: experiment.id,
    ...(options.runName !== undefined && { name: options.runName }),
    tags: {
      'menagerie.plugin': model.name,
      'menagerie.tuner': tuner.name,
      'menagerie.objective': `${config.direction} ${objective}`,
      [DISTRIBUTED_TAG]: String(parallelism),
    },
  });
  await tracking.logParams(run.id, {
    plugin: model.name,
    tuner: tuner.name,
    objective,
    direction: config.direction,
    max_trials: options.maxTrials ?? 'tuner default',
    epochs: config.epochs,
    seed: config.seed,
    executions_per_trial: config.executionsPerTrial,
    parallelism,
    ...Object.fromEntries(
      Object.entries(config.tunerOptions).map(([k, v]) => [`tuner_${k}`, String(v)]),
    ),
  });
  await disown(db, run.id);

  const state: SearchState = { oracle: oracle.state(), trials: [], consecutiveFailures: 0 };
  const ended = propose(oracle, state, parallelism);
  const now = Date.now();
  await db
    .insertInto('tuning_searches')
    .values({
      run_id: run.id,
      config: JSON.stringify(config),
      state: JSON.stringify(state),
      parallelism,
      status: ended ? 'FINISHED' : 'RUNNING',
      created_at: now,
      updated_at: now,
    })
    .execute();
  if (ended) await endSearchRun(context, run.id, config, state, 'FINISHED');
  return { runId: run.id, queued: queuedIds(state) };
}

async function resumeSearch(
  context: JobContext,
  runId: string,
  parallelism: number,
): Promise<{ runId: string; queued: string[] }> {
  const { db, tracking } = context;
  const exists = await db
    .selectFrom('tuning_searches')
    .select('run_id')
    .where('run_id', '=', runId)
    .executeTakeFirst();
  if (!exists) {
    throw new MenagerieError(
      'RUN_NOT_FOUND',
      `run ${runId} is not a distributed tuning run; resume it without --distributed`,
    );
  }
  await tracking.resumeRun(runId);
  await disown(db, runId);
  const progress = await withSearch(db, context.plugins, runId, (search) => {
    search.status = 'RUNNING';
    search.parallelism = parallelism;
    // Trials whose worker is gone for good (the whole cluster stopped) run again.
    for (const trial of search.state.trials)
      if (trial.status === 'RUNNING') trial.status = 'QUEUED';
    search.ended = propose(search.oracle, search.state, parallelism);
  });
  if (progress.done) await finalize(context, runId, progress.status);
  return { runId, queued: progress.queued };
}

/**
 * Claims a trial for this worker: QUEUED becomes RUNNING, and a RUNNING one (its worker
 * was lost, the queue gave the job to this one) is taken over. Null when the trial has
 * ended already or the search no longer runs: nothing to do.
 */
export async function claimTrial(
  db: Kysely<Database>,
  runId: string,
  trialId: string,
): Promise<ClaimedTrial | null> {
  let claimed: ClaimedTrial | null = null;
  await withSearch(db, null, runId, (search) => {
    if (search.status !== 'RUNNING') return;
    const trial = search.state.trials.find((t) => t.trialId === trialId);
    if (!trial) {
      throw new MenagerieError(
        'TUNING_STATE_INVALID',
        `trial ${trialId} was never proposed in tuning run ${runId}`,
      );
    }
    if (trial.status !== 'QUEUED' && trial.status !== 'RUNNING') return;
    const earlierRuns = [...trial.runIds];
    trial.status = 'RUNNING';
    trial.attempts += 1;
    claimed = {
      config: search.config,
      trial: structuredClone(trial),
      earlierRuns,
      trialRuns: Object.fromEntries(
        search.state.trials
          .filter((t) => t.status === 'COMPLETED' && t.runIds.length > 0)
          .map((t) => [t.trialId, t.runIds.at(-1)!]),
      ),
    };
  });
  return claimed;
}

/** Records the child run of the current attempt, so a later takeover can end it. */
export async function recordTrialRun(
  db: Kysely<Database>,
  runId: string,
  trialId: string,
  childRunId: string,
): Promise<void> {
  await withSearch(db, null, runId, (search) => {
    const trial = search.state.trials.find((t) => t.trialId === trialId);
    if (trial && !trial.runIds.includes(childRunId)) trial.runIds.push(childRunId);
  });
}

/**
 * Reports a trial and proposes the next ones, in one transaction; ends the search (and its
 * tuning run) when the oracle is done and nothing is in flight. A second report of the
 * same trial changes nothing.
 */
export async function finishTrial(
  context: JobContext,
  runId: string,
  trialId: string,
  outcome: TrialOutcome,
): Promise<SearchProgress> {
  const progress = await withSearch(context.db, context.plugins, runId, (search) => {
    const trial = search.state.trials.find((t) => t.trialId === trialId);
    if (!trial || trial.status === 'COMPLETED' || trial.status === 'FAILED') return;
    const ok = outcome.status === 'COMPLETED' && Number.isFinite(outcome.score);
    trial.status = ok ? 'COMPLETED' : 'FAILED';
    if (ok) {
      trial.score = outcome.score!;
      if (outcome.epochs !== undefined) trial.trainedEpochs = outcome.epochs;
    } else trial.error = outcome.error ?? 'trial failed';
    if (outcome.executionScores) trial.executionScores = outcome.executionScores;
    search.oracle.report({
      trialId,
      values: trial.values,
      status: trial.status,
      ...(ok && { score: trial.score }),
      ...(trial.trainedEpochs !== undefined && { epochs: trial.trainedEpochs }),
    });
    search.state.oracle = search.oracle.state();
    search.state.consecutiveFailures = ok ? 0 : search.state.consecutiveFailures + 1;
    if (search.status !== 'RUNNING') {
      // Cancelled: no new trials; the search ends when the last one in flight does.
      search.ended = inFlight(search.state) === 0;
      return;
    }
    if (search.state.consecutiveFailures >= search.config.maxConsecutiveFailedTrials) {
      search.status = 'FAILED';
      search.failure =
        `${search.state.consecutiveFailures} trials in a row failed ` +
        `(maxConsecutiveFailedTrials is ${search.config.maxConsecutiveFailedTrials}); ` +
        `last, ${trialId}: ${trial.error ?? 'unknown error'}`;
      for (const t of search.state.trials) if (t.status === 'QUEUED') t.status = 'FAILED';
      search.ended = inFlight(search.state) === 0;
      return;
    }
    search.ended = propose(search.oracle, search.state, search.parallelism);
  });
  if (progress.done) await finalize(context, runId, progress.status, progress.failure);
  return progress;
}

/** Stops proposing: queued trials are dropped; running ones end as their workers stop them. */
export async function cancelSearch(context: JobContext, runId: string): Promise<SearchProgress> {
  const progress = await withSearch(context.db, null, runId, (search) => {
    if (search.status !== 'RUNNING') return;
    search.status = 'KILLED';
    search.state.trials = search.state.trials.filter((t) => t.status !== 'QUEUED');
    search.ended = inFlight(search.state) === 0;
  });
  if (progress.done) await finalize(context, runId, progress.status);
  return progress;
}

/** The trials waiting for a worker, and the search's status. */
export async function searchProgress(
  db: Kysely<Database>,
  runId: string,
): Promise<SearchProgress & { trials: SearchTrial[] }> {
  const row = await db
    .selectFrom('tuning_searches')
    .selectAll()
    .where('run_id', '=', runId)
    .executeTakeFirst();
  if (!row) throw new MenagerieError('RUN_NOT_FOUND', `no distributed tuning run ${runId}`);
  const state = JSON.parse(row.state) as SearchState;
  return {
    queued: row.status === 'RUNNING' ? queuedIds(state) : [],
    done: row.status !== 'RUNNING' && inFlight(state) === 0,
    status: row.status,
    trials: state.trials,
  };
}

/**
 * Runs one claimed trial in this process (the `tune-trial` command): ends the attempts a
 * lost worker left RUNNING, trains each execution as a child run of the tuning run, then
 * reports. Returns null when there was nothing to run (already finished elsewhere).
 */
export async function runDistributedTrial(
  context: JobContext,
  runId: string,
  trialId: string,
  hooks: {
    signal?: AbortSignal;
    /** The listener for the trial's training, given its epochs (progress bars). */
    observer?: (epochs: number) => TrainingObserver;
    onTrialStart?: (trial: SearchTrial, childRunId: string) => void;
  } = {},
): Promise<{ trial: TuningTrial; progress: SearchProgress } | null> {
  const { tracking } = context;
  const claimed = await claimTrial(context.db, runId, trialId);
  if (!claimed) return null;
  const { config, trial } = claimed;
  const observer = hooks.observer?.(trial.epochs ?? config.epochs);
  for (const earlier of claimed.earlierRuns) {
    const run = await tracking.getRun(earlier).catch(() => null);
    if (run?.status === 'RUNNING') {
      await tracking.setTag(earlier, 'menagerie.error', 'its worker was lost; trial taken over');
      await tracking.endRun(earlier, 'KILLED');
    }
  }
  // The tuning run has no process of its own: its trials prove it alive.
  const stopHeartbeat = tracking.keepAlive(runId);
  const scores: number[] = [];
  let epochs = 0;
  let failure: string | undefined;
  try {
    const warmFrom = trial.warmStartFrom ? claimed.trialRuns[trial.warmStartFrom] : undefined;
    for (let execution = 0; execution < config.executionsPerTrial; execution++) {
      try {
        const { result } = await runTrackedTraining(context, {
          ...(await trialTrainingOptions(tracking, {
            plugin: config.plugin,
            fixed: config.fixed,
            trial,
            epochs: config.epochs,
            seed: config.seed,
            execution,
            searchRunId: runId,
            warmFrom,
            experiment: config.experiment,
            batchSize: config.batchSize,
            limitPerLabel: config.limitPerLabel,
            tags: { 'menagerie.worker': `${os.hostname()}:${process.pid}` },
          })),
          ...(hooks.signal && { signal: hooks.signal }),
          ...(observer && { observer }),
          onRun: (id) => {
            void recordTrialRun(context.db, runId, trialId, id);
            hooks.onTrialStart?.(trial, id);
          },
        });
        // Interrupted, not failed: left RUNNING in the search, so a resume reruns it.
        if (result.status === 'KILLED' || hooks.signal?.aborted) return null;
        const values = result.history
          .map((h) => h[config.objective])
          .filter((v): v is number => Number.isFinite(v));
        if (values.length === 0) throw new Error(`logged no '${config.objective}' metric`);
        scores.push(config.direction === 'max' ? Math.max(...values) : Math.min(...values));
        epochs = Math.max(epochs, result.history.length + (trial.initialEpoch ?? 0));
      } catch (error) {
        if (hooks.signal?.aborted) return null;
        failure = error instanceof Error ? error.message : String(error);
        break;
      }
    }
  } finally {
    stopHeartbeat();
  }
  const outcome: TrialOutcome =
    failure === undefined
      ? {
          status: 'COMPLETED',
          score: scores.reduce((a, b) => a + b, 0) / scores.length,
          epochs,
          executionScores: scores,
        }
      : { status: 'FAILED', error: failure, executionScores: scores };
  const progress = await finishTrial(context, runId, trialId, outcome);
  return {
    trial: {
      trialId,
      values: trial.values,
      status: outcome.status,
      executionScores: scores,
      ...(outcome.score !== undefined && { score: outcome.score, epochs }),
      ...(outcome.error !== undefined && { error: outcome.error }),
    },
    progress,
  };
}

// ---------------------------------------------------------------------------------------

interface LockedSearch {
  config: SearchConfig;
  state: SearchState;
  oracle: Oracle;
  parallelism: number;
  status: SearchProgress['status'];
  ended: boolean;
  failure?: string;
}

/**
 * Reads the search under its row's lock, lets `change` edit it, writes it back, in one
 * transaction. SQLite has no row locks: the first statement is a write, so the transaction
 * takes the database's write lock before it reads (a plain BEGIN would read first and
 * fail to upgrade when another process wrote meanwhile).
 */
async function withSearch(
  db: Kysely<Database>,
  plugins: PluginRegistry | null,
  runId: string,
  change: (search: LockedSearch) => void,
): Promise<SearchProgress & { failure?: string }> {
  return db.transaction().execute(async (trx) => {
    const row = await lockRow(trx, runId);
    const config = JSON.parse(row.config) as SearchConfig;
    const state = JSON.parse(row.state) as SearchState;
    const search: LockedSearch = {
      config,
      state,
      get oracle() {
        // Built on first use only: claims and run records need no oracle.
        if (!plugins) throw new Error('withSearch: this change needs the plugins');
        const oracle = createOracle(plugins, config);
        oracle.restore(state.oracle);
        Object.defineProperty(this, 'oracle', { value: oracle });
        return oracle;
      },
      parallelism: row.parallelism,
      status: row.status,
      ended: false,
    };
    change(search);
    if (search.ended && search.status === 'RUNNING') search.status = 'FINISHED';
    await trx
      .updateTable('tuning_searches')
      .set({
        state: JSON.stringify(search.state),
        status: search.status,
        parallelism: search.parallelism,
        updated_at: Date.now(),
      })
      .where('run_id', '=', runId)
      .execute();
    return {
      queued: search.status === 'RUNNING' ? queuedIds(search.state) : [],
      done: search.ended,
      status: search.status,
      ...(search.failure !== undefined && { failure: search.failure }),
    };
  });
}

async function lockRow(trx: Transaction<Database>, runId: string) {
  const postgres = trx.getExecutor().adapter instanceof PostgresAdapter;
  if (!postgres) {
    await trx
      .updateTable('tuning_searches')
      .set((eb) => ({ updated_at: eb.ref('updated_at') }))
      .where('run_id', '=', runId)
      .execute();
  }
  let query = trx.selectFrom('tuning_searches').selectAll().where('run_id', '=', runId);
  if (postgres) query = query.forUpdate();
  const row = await query.executeTakeFirst();
  if (!row) throw new MenagerieError('RUN_NOT_FOUND', `no distributed tuning run ${runId}`);
  return row;
}

function createOracle(plugins: PluginRegistry, config: SearchConfig): Oracle {
  const model = plugins.get('model', config.plugin);
  const tuner = plugins.get('tuner', config.tuner);
  const hp = new HyperParameters(config.fixed);
  model.space(hp);
  const space = hp.space.map((spec) =>
    spec.name in config.fixed
      ? {
          type: 'fixed' as const,
          name: spec.name,
          value: config.fixed[spec.name]!,
          conditions: spec.conditions,
        }
      : spec,
  );
  return tuner.createOracle({
    space,
    objective: { name: config.objective, direction: config.direction },
    ...(config.maxTrials !== undefined && { maxTrials: config.maxTrials }),
    seed: config.seed,
    ...config.tunerOptions,
  });
}

/**
 * Fills the search up to `parallelism` trials in flight. Returns true when the search is
 * over: the oracle has nothing more and nothing is in flight. When it has nothing more
 * while trials are in flight, its state from before that answer is kept (see above).
 */
function propose(oracle: Oracle, state: SearchState, parallelism: number): boolean {
  while (inFlight(state) < parallelism) {
    const proposal = oracle.next();
    if (!proposal) {
      if (inFlight(state) > 0) return false;
      state.oracle = oracle.state();
      return true;
    }
    const earlier = state.trials.find(
      (t) =>
        t.trialId === proposal.trialId &&
        (t.status === 'COMPLETED' || t.status === 'FAILED') &&
        configKey(t.values) === configKey(proposal.values),
    );
    if (earlier) {
      oracle.report({
        trialId: earlier.trialId,
        values: earlier.values,
        status: earlier.status as 'COMPLETED' | 'FAILED',
        ...(earlier.score !== undefined && { score: earlier.score }),
      });
    } else {
      state.trials.push({ ...proposal, status: 'QUEUED', attempts: 0, runIds: [] });
    }
    state.oracle = oracle.state();
  }
  return false;
}

const inFlight = (state: SearchState) =>
  state.trials.filter((t) => t.status === 'QUEUED' || t.status === 'RUNNING').length;

const queuedIds = (state: SearchState) =>
  state.trials.filter((t) => t.status === 'QUEUED').map((t) => t.trialId);

async function finalize(
  context: JobContext,
  runId: string,
  status: SearchProgress['status'],
  failure?: string,
): Promise<void> {
  const row = await context.db
    .selectFrom('tuning_searches')
    .select(['config', 'state'])
    .where('run_id', '=', runId)
    .executeTakeFirstOrThrow();
  const config = JSON.parse(row.config) as SearchConfig;
  const state = JSON.parse(row.state) as SearchState;
  if (failure) await context.tracking.setTag(runId, 'menagerie.error', failure.slice(0, 8000));
  await endSearchRun(context, runId, config, state, status === 'RUNNING' ? 'FINISHED' : status);
}

async function endSearchRun(
  context: JobContext,
  runId: string,
  config: SearchConfig,
  state: SearchState,
  status: 'FINISHED' | 'FAILED' | 'KILLED',
): Promise<void> {
  const { tracking } = context;
  const trials: TuningTrial[] = state.trials
    .filter((t) => t.status === 'COMPLETED' || t.status === 'FAILED')
    .map((t) => ({
      trialId: t.trialId,
      values: t.values,
      status: t.status as 'COMPLETED' | 'FAILED',
      executionScores: t.executionScores ?? [],
      ...(t.score !== undefined && { score: t.score }),
    }));
  const best = bestTrial(trials, config.direction);
  if (best) {
    await tracking.setTag(runId, 'menagerie.best_trial', best.trialId);
    const bestRun = state.trials.find((t) => t.trialId === best.trialId)?.runIds.at(-1);
    if (bestRun) await tracking.setTag(runId, 'menagerie.best_run', bestRun);
    if (best.score !== undefined) {
      await tracking.logMetric(runId, `best_${config.objective}`, best.score);
    }
  }
  await tracking.logMetric(runId, 'trials_finished', trials.length);
  const run = await tracking.getRun(runId);
  if (run.status === 'RUNNING') await tracking.endRun(runId, status);
}

/**
 * A search's tuning run belongs to no process (its trials run on any worker): without an
 * owner, stale-run detection judges it by its heartbeat, which its trials keep.
 */
async function disown(db: Kysely<Database>, runId: string): Promise<void> {
  await db.updateTable('runs').set({ owner_pid: null }).where('id', '=', runId).execute();
}
