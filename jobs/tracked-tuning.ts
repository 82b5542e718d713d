import fs from 'node:fs/promises';
import path from 'node:path';
import { MenagerieError } from '../core/errors.js';
import { HyperParameters, type HpValue } from '../plugin-api/hyperparameters.js';
import {
  runTuning,
  type TuningOutcome,
  type TuningState,
  type TuningTrial,
} from '../training/tuning-loop.js';
import type { TrainingObserver } from '../training/training-observer.js';
import { MODEL_ARTIFACT_PATH } from '../tracking/run-evaluation.js';
import {
  runTrackedTraining,
  type JobContext,
  type TrackedTrainingOptions,
} from './tracked-training.js';

export interface TrackedTuningOptions {
  /** Model plugin whose space is searched, e.g. `menagerie:cnn`. */
  plugin: string;
  /** Tuner plugin, e.g. `menagerie:hyperband`. */
  tuner: string;
  /** Objective metric (a per-epoch metric; the best epoch of a trial counts). */
  objective?: string;
  direction?: 'min' | 'max';
  /** Trials at most; default: the tuner's own (Hyperband: its whole schedule, others 10). */
  maxTrials?: number;
  /** Epochs per trial (Hyperband decides its own, up to `maxEpochs`). */
  epochs?: number;
  executionsPerTrial?: number;
  maxConsecutiveFailedTrials?: number;
  /** Fixed values: these hyperparameters are not searched. */
  fixed?: Record<string, HpValue>;
  /** Tuner-specific options (Hyperband's maxEpochs, factor…). */
  tunerOptions?: Record<string, unknown>;
  seed?: number;
  experiment?: string;
  runName?: string;
  /** Continue the tuning run with this id: finished trials are never run again. */
  resume?: string;
  batchSize?: number;
  limitPerLabel?: number;
  signal?: AbortSignal;
  /** Called with the tuning run's id once it exists. */
  onRun?: (runId: string) => void;
  onTrialStart?: (trialId: string, values: Record<string, HpValue>, runId: string) => void;
  onTrialEnd?: (trial: TuningTrial) => void;
  /** Listener for each trial's training (progress bars). */
  observer?: TrainingObserver;
}

const STATE_FILE = 'tuning-state.json';
const TRIAL_TAG = 'menagerie.trial_id';

/**
 * What training one execution of a trial takes, the same for a local and a distributed
 * search: a child run of the search named after the trial, its values over the fixed ones,
 * no early stopping (it would blur Hyperband's budgets), warm-started from `warmFrom`'s
 * checkpoint when the trial continues an earlier one. Callers add signal, observer, onRun.
 */
export async function trialTrainingOptions(
  tracking: JobContext['tracking'],
  o: {
    plugin: string;
    fixed: Record<string, HpValue>;
    trial: {
      trialId: string;
      values: Record<string, HpValue>;
      epochs?: number;
      initialEpoch?: number;
    };
    epochs: number;
    seed: number;
    execution: number;
    searchRunId: string;
    /** The run of the trial this one warm-starts from. */
    warmFrom: string | undefined;
    experiment: string | undefined;
    batchSize: number | undefined;
    limitPerLabel: number | undefined;
    tags?: Record<string, string>;
  },
): Promise<TrackedTrainingOptions> {
  const warmStartDir = o.warmFrom
    ? path.join(await tracking.artifactPath(o.warmFrom), MODEL_ARTIFACT_PATH)
    : undefined;
  return {
    plugin: o.plugin,
    hp: { ...o.fixed, ...o.trial.values },
    epochs: o.trial.epochs ?? o.epochs,
    seed: o.seed + o.execution,
    parentRunId: o.searchRunId,
    runName: `${o.trial.trialId}${o.execution > 0 ? `-${o.execution}` : ''}`,
    tags: {
      [TRIAL_TAG]: o.trial.trialId,
      ...o.tags,
      ...(o.warmFrom && { 'menagerie.warm_start_run': o.warmFrom }),
    },
    earlyStopping: false,
    ...(o.experiment !== undefined && { experiment: o.experiment }),
    ...(warmStartDir &&
      o.trial.initialEpoch !== undefined && {
        warmStartDir,
        initialEpoch: o.trial.initialEpoch,
      }),
    ...(o.batchSize !== undefined && { batchSize: o.batchSize }),
    ...(o.limitPerLabel !== undefined && { limitPerLabel: o.limitPerLabel }),
  };
}

/**
 * A tuning run: a parent run in the tracking store whose trials are child runs (so they
 * are searchable and comparable like any run), driven by a tuner plugin through the
 * resumable tuning loop. The loop's state is the parent's `tuning-state.json` artifact,
 * written after every trial; `resume` reopens the parent run and continues from it.
 *
 * ```ts
 * const { runId, outcome } = await runTrackedTuning(context, {
 *   plugin: 'menagerie:cnn', tuner: 'menagerie:hyperband', tunerOptions: { maxEpochs: 9 },
 * });
 * outcome.best?.values;
 * ```
 */
export async function runTrackedTuning(
  context: JobContext,
  options: TrackedTuningOptions,
): Promise<{ runId: string; outcome: TuningOutcome }> {
  const { tracking } = context;
  const model = context.plugins.get('model', options.plugin);
  const tuner = context.plugins.get('tuner', options.tuner);
  const objective = options.objective ?? 'val_accuracy';
  const direction = options.direction ?? (objective.endsWith('loss') ? 'min' : 'max');
  const epochs = options.epochs ?? 5;
  const seed = options.seed ?? 42;

  let runId: string;
  if (options.resume) {
    const previous = await tracking.getRun(options.resume);
    if (previous.tags['menagerie.tuner'] === undefined) {
      throw new MenagerieError('RUN_NOT_FOUND', `run ${options.resume} is not a tuning run`);
    }
    await tracking.resumeRun(previous.id);
    runId = previous.id;
  } else {
    const experiment = await tracking.getOrCreateExperiment(options.experiment ?? 'default');
    const run = await tracking.createRun({
      experimentId: experiment.id,
      ...(options.runName !== undefined && { name: options.runName }),
      tags: {
        'menagerie.plugin': model.name,
        'menagerie.tuner': tuner.name,
        'menagerie.objective': `${direction} ${objective}`,
      },
    });
    runId = run.id;
    await tracking.logParams(runId, {
      plugin: model.name,
      tuner: tuner.name,
      objective,
      direction,
      max_trials: options.maxTrials ?? 'tuner default',
      epochs,
      seed,
      executions_per_trial: options.executionsPerTrial ?? 1,
      ...Object.fromEntries(
        Object.entries(options.tunerOptions ?? {}).map(([k, v]) => [`tuner_${k}`, String(v)]),
      ),
    });
  }
  options.onRun?.(runId);
  const stopHeartbeat = tracking.keepAlive(runId);
  const stateFile = path.join(await tracking.artifactPath(runId), STATE_FILE);

  try {
    // The space, with fixed values pinned so the tuner does not search them.
    // Fixed values go in first: a space may depend on them (a URL backbone's own settings).
    const fixed = options.fixed ?? {};
    const hp = new HyperParameters(fixed);
    model.space(hp);
    const space = hp.space.map((spec) =>
      spec.name in fixed
        ? {
            type: 'fixed' as const,
            name: spec.name,
            value: fixed[spec.name]!,
            conditions: spec.conditions,
          }
        : spec,
    );
    const oracle = tuner.createOracle({
      space,
      objective: { name: objective, direction },
      ...(options.maxTrials !== undefined && { maxTrials: options.maxTrials }),
      seed,
      ...options.tunerOptions,
    });

    const trialRuns = new Map<string, string>();
    for (const child of await tracking.listChildRuns(runId)) {
      const trialId = child.tags[TRIAL_TAG];
      if (trialId && child.status === 'FINISHED') trialRuns.set(trialId, child.id);
    }
    const saved = await readState(stateFile);
    let finished = saved?.trials.length ?? 0;
    const outcome = await runTuning({
      oracle,
      direction,
      ...(options.executionsPerTrial !== undefined && {
        executionsPerTrial: options.executionsPerTrial,
      }),
      ...(options.maxConsecutiveFailedTrials !== undefined && {
        maxConsecutiveFailedTrials: options.maxConsecutiveFailedTrials,
      }),
      ...(options.signal && { signal: options.signal }),
      loadState: () => saved,
      saveState: async (state) => {
        await writeState(stateFile, state);
        // Any worker can resume the search: the state lives in the artifact store.
        await tracking.uploadArtifacts(runId);
      },
      onTrialEnd: async (trial) => {
        finished += 1;
        await tracking.logMetrics(
          runId,
          {
            trials_finished: finished,
            ...(trial.score !== undefined && { trial_score: trial.score }),
          },
          { step: finished },
        );
        options.onTrialEnd?.(trial);
      },
      runTrial: async (proposal, execution, signal) => {
        const { runId: childId, result } = await runTrackedTraining(context, {
          ...(await trialTrainingOptions(tracking, {
            plugin: model.name,
            fixed,
            trial: proposal,
            epochs,
            seed,
            execution,
            searchRunId: runId,
            warmFrom: proposal.warmStartFrom ? trialRuns.get(proposal.warmStartFrom) : undefined,
            experiment: options.experiment,
            batchSize: options.batchSize,
            limitPerLabel: options.limitPerLabel,
          })),
          ...(signal && { signal }),
          ...(options.observer && { observer: options.observer }),
          onRun: (id) => options.onTrialStart?.(proposal.trialId, proposal.values, id),
        });
        if (result.status === 'KILLED') throw new Error('trial aborted');
        trialRuns.set(proposal.trialId, childId);
        const scores = result.history
          .map((h) => h[objective])
          .filter((v): v is number => Number.isFinite(v));
        if (scores.length === 0) {
          throw new MenagerieError(
            'HP_INVALID',
            `trial ${proposal.trialId} logged no '${objective}' metric`,
          );
        }
        const score = direction === 'max' ? Math.max(...scores) : Math.min(...scores);
        return { score, epochs: result.history.length + (proposal.initialEpoch ?? 0) };
      },
    });
    if (outcome.best) {
      await tracking.setTag(runId, 'menagerie.best_trial', outcome.best.trialId);
      const bestRun = trialRuns.get(outcome.best.trialId);
      if (bestRun) await tracking.setTag(runId, 'menagerie.best_run', bestRun);
      if (outcome.best.score !== undefined) {
        await tracking.logMetric(runId, `best_${objective}`, outcome.best.score);
      }
    }
    await tracking.endRun(runId, outcome.aborted ? 'KILLED' : 'FINISHED');
    return { runId, outcome };
  } catch (error) {
    const message = error instanceof Error ? error.message : String(error);
    await tracking.setTag(runId, 'menagerie.error', message.slice(0, 8000)).catch(() => {});
    await tracking.endRun(runId, options.signal?.aborted ? 'KILLED' : 'FAILED').catch(() => {});
    throw error;
  } finally {
    stopHeartbeat();
  }
}

async function readState(file: string): Promise<TuningState | null> {
  try {
    return JSON.parse(await fs.readFile(file, 'utf8')) as TuningState;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw new MenagerieError('TUNING_STATE_INVALID', `${file} cannot be read: ${String(error)}`, {
      cause: error,
    });
  }
}

/** Temp file + rename: a kill mid-write leaves the previous state, never half of one. */
async function writeState(file: string, state: TuningState): Promise<void> {
  const temp = `${file}.${process.pid}.tmp`;
  await fs.mkdir(path.dirname(file), { recursive: true });
  await fs.writeFile(temp, `${JSON.stringify(state, null, 2)}\n`);
  await fs.rename(temp, file);
}
