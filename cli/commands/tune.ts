import { Command, InvalidArgumentError } from 'commander';
import { MenagerieError } from '../../core/errors.js';
import {
  runDistributedTrial,
  searchProgress,
  startDistributedTuning,
  type DistributedTuningOptions,
} from '../../jobs/distributed-tuning.js';
import { enqueueTrials, openJobsQueue, queueConfigFromEnv } from '../../jobs/job-queue.js';
import { runTrackedTuning } from '../../jobs/tracked-tuning.js';
import { formatTable } from '../format-table.js';
import { collect, parsePositiveInt } from '../options.js';
import { jsonProgress } from '../progress-json.js';
import { openWorkspace } from '../workspace.js';
import { abortOnSigint, epochProgress, jobContext, parseHp } from './train.js';

export function registerTune(program: Command): void {
  program
    .command('tune')
    .description("search a model plugin's hyperparameters; every trial is a child run")
    .option('--plugin <name>', 'model plugin', 'cnn')
    .option('--tuner <name>', 'random, grid, hyperband or bayesian', 'hyperband')
    .option('--objective <metric>', 'metric to optimise', 'val_accuracy')
    .option('--direction <dir>', 'max or min (default: min for *loss, else max)', parseDirection)
    .option(
      '--max-trials <n>',
      "trials at most (default: the tuner's own; Hyperband runs its whole schedule)",
      parsePositiveInt,
    )
    .option('--epochs <n>', 'epochs per trial (Hyperband: max epochs)', parsePositiveInt, 5)
    .option('--factor <n>', 'Hyperband reduction factor', parsePositiveInt, 3)
    .option('--executions <n>', 'executions per trial, averaged', parsePositiveInt, 1)
    .option('--max-failures <n>', 'stop after N consecutive failed trials', parsePositiveInt, 3)
    .option('--fix <name=value>', 'pin a hyperparameter (repeatable)', collect, [])
    .option('--batch-size <n>', 'batch size', parsePositiveInt, 32)
    .option('--seed <n>', 'seed', parsePositiveInt, 42)
    .option('--experiment <name>', 'experiment (created if new)', 'default')
    .option('--run-name <name>', 'tuning run name')
    .option('--limit-per-label <n>', 'at most N images per label and split', parsePositiveInt)
    .option('--resume <runId>', 'continue a tuning run; finished trials are not run again')
    .option(
      '--distributed <n>',
      'queue the trials for `menagerie worker`s, N in flight (needs MENAGERIE_QUEUE_URL)',
      parsePositiveInt,
    )
    .option('--wait', 'with --distributed: wait until the search ends')
    .option('--json', 'print the result as JSON')
    .option('--progress-json', 'print one JSON line per job event on stdout (for the server)')
    .action(async (opts: TuneOptions, command: Command) => {
      if (opts.distributed !== undefined) return tuneDistributed(opts, command);
      const workspace = await openWorkspace(command.optsWithGlobals());
      const controller = abortOnSigint();
      const progress = opts.progressJson ? jsonProgress() : undefined;
      let tuningRunId: string | undefined;
      let trialRunId: string | undefined;
      try {
        const { runId, outcome } = await runTrackedTuning(jobContext(workspace), {
          ...searchSettings(opts),
          signal: controller.signal,
          observer:
            progress?.observer(
              opts.epochs,
              () => trialRunId,
              () => tuningRunId,
            ) ?? epochProgress(opts.epochs, '  '),
          ...(opts.resume !== undefined && { resume: opts.resume }),
          onRun: (id) => {
            tuningRunId = id;
            progress?.emit({ event: 'run', runId: id, kind: 'tuning' });
            console.error(`tuning run ${id}${opts.resume ? ' (resumed)' : ''}`);
          },
          onTrialStart: (trialId, values, id) => {
            trialRunId = id;
            progress?.emit({
              event: 'trial-start',
              runId: id,
              parentRunId: tuningRunId!,
              trialId,
              values,
            });
            console.error(`trial ${trialId} (run ${id}): ${JSON.stringify(values)}`);
          },
          onTrialEnd: (trial) => {
            progress?.emit({
              event: 'trial-end',
              runId: trialRunId ?? tuningRunId!,
              parentRunId: tuningRunId!,
              trialId: trial.trialId,
              status: trial.status,
              ...(trial.score !== undefined && { score: trial.score }),
              ...(trial.error !== undefined && { error: trial.error }),
            });
            console.error(
              `trial ${trial.trialId} ${trial.status}${trial.score !== undefined ? ` ${opts.objective} ${trial.score.toFixed(4)}` : ` ${trial.error ?? ''}`}`,
            );
          },
        });
        if (progress) {
          progress.emit({ event: 'end', runId, status: outcome.aborted ? 'KILLED' : 'FINISHED' });
          if (outcome.aborted) process.exitCode = 130;
          return;
        }
        if (opts.json) {
          console.log(JSON.stringify({ runId, ...outcome }, null, 2));
          return;
        }
        const keys = [...new Set(outcome.trials.flatMap((t) => Object.keys(t.values)))];
        const ranked = [...outcome.trials].sort((a, b) => rank(b.score) - rank(a.score));
        if (outcome.best && outcome.best === ranked.at(-1)) ranked.reverse();
        console.log(
          formatTable(
            ['trial', 'status', opts.objective, 'epochs', ...keys],
            ranked.map((t) => [
              `${t.trialId}${t === outcome.best ? ' *' : ''}`,
              t.status,
              t.score?.toFixed(4) ?? '',
              t.epochs ?? '',
              ...keys.map((k) => formatValue(t.values[k])),
            ]),
          ),
        );
        console.log(
          `tuning run ${runId} ${outcome.aborted ? 'stopped (resume with --resume ' + runId + ')' : 'finished'}; best trial ${outcome.best?.trialId ?? 'none'}`,
        );
        if (outcome.aborted) process.exitCode = 130;
      } catch (error) {
        progress?.fail(error, tuningRunId);
        throw error;
      } finally {
        controller.dispose();
        await workspace.close();
      }
    });
}

/** `tune --distributed N`: the search's row and its first trials; workers do the rest. */
async function tuneDistributed(opts: TuneOptions, command: Command): Promise<void> {
  const queueConfig = queueConfigFromEnv();
  if (!queueConfig) {
    throw new MenagerieError(
      'CONFIG_INVALID',
      '--distributed needs MENAGERIE_QUEUE_URL=redis://host:port, the queue `menagerie worker`s take jobs from',
    );
  }
  const workspace = await openWorkspace(command.optsWithGlobals());
  const queue = openJobsQueue(queueConfig);
  try {
    const { runId, queued } = await startDistributedTuning(jobContext(workspace), {
      ...searchSettings(opts),
      parallelism: opts.distributed!,
      ...(opts.resume !== undefined && { resume: opts.resume }),
    });
    await enqueueTrials(queue, runId, queued);
    console.error(
      `tuning run ${runId}${opts.resume ? ' (resumed)' : ''}: ${queued.length} trial(s) queued, ${opts.distributed} in flight`,
    );
    let status: string = 'RUNNING';
    if (opts.wait) {
      for (;;) {
        const progress = await searchProgress(workspace.database.db, runId);
        if (progress.done) {
          status = progress.status;
          break;
        }
        await new Promise((resolve) => setTimeout(resolve, 250));
      }
    }
    if (opts.json) console.log(JSON.stringify({ runId, status }));
    else console.log(runId);
  } finally {
    await queue.close();
    await workspace.close();
  }
}

/** `tune-trial` (hidden): one trial of a distributed search, as a worker's child runs it. */
export function registerTuneTrial(program: Command): void {
  program.addCommand(
    new Command('tune-trial')
      .description('run one trial of a distributed tuning search (what workers run)')
      .requiredOption('--search <runId>', 'the tuning run')
      .requiredOption('--trial <trialId>', 'the trial')
      .option('--progress-json', 'print one JSON line per job event on stdout (for the worker)')
      .action(
        async (opts: { search: string; trial: string; progressJson?: boolean }, cmd: Command) => {
          const workspace = await openWorkspace(cmd.optsWithGlobals());
          const controller = abortOnSigint();
          const progress = opts.progressJson ? jsonProgress() : undefined;
          let trialRunId: string | undefined;
          try {
            const result = await runDistributedTrial(
              jobContext(workspace),
              opts.search,
              opts.trial,
              {
                signal: controller.signal,
                observer: (epochs) =>
                  progress?.observer(
                    epochs,
                    () => trialRunId,
                    () => opts.search,
                  ) ?? epochProgress(epochs, '  '),
                onTrialStart: (trial, id) => {
                  trialRunId = id;
                  progress?.emit({
                    event: 'trial-start',
                    runId: id,
                    parentRunId: opts.search,
                    trialId: trial.trialId,
                    values: trial.values,
                  });
                  console.error(
                    `trial ${trial.trialId} (run ${id}): ${JSON.stringify(trial.values)}`,
                  );
                },
              },
            );
            if (!result) {
              console.error(`trial ${opts.trial}: nothing to run (finished, or interrupted)`);
              if (controller.signal.aborted) process.exitCode = 130;
              return;
            }
            progress?.emit({
              event: 'trial-end',
              runId: trialRunId ?? opts.search,
              parentRunId: opts.search,
              trialId: opts.trial,
              status: result.trial.status,
              ...(result.trial.score !== undefined && { score: result.trial.score }),
              ...(result.trial.error !== undefined && { error: result.trial.error }),
            });
            console.error(
              `trial ${opts.trial} ${result.trial.status}; ${result.progress.queued.length} queued, search ${result.progress.status}`,
            );
          } catch (error) {
            progress?.fail(error, trialRunId);
            throw error;
          } finally {
            controller.dispose();
            await workspace.close();
          }
        },
      ),
    { hidden: true },
  );
}

interface TuneOptions {
  plugin: string;
  tuner: string;
  objective: string;
  direction?: 'min' | 'max';
  maxTrials?: number;
  epochs: number;
  factor: number;
  executions: number;
  maxFailures: number;
  fix: string[];
  batchSize: number;
  seed: number;
  experiment: string;
  runName?: string;
  limitPerLabel?: number;
  resume?: string;
  json?: boolean;
  progressJson?: boolean;
  distributed?: number;
  wait?: boolean;
}

/** The search's settings from the command line, the same for a local or a distributed search. */
function searchSettings(opts: TuneOptions): Omit<DistributedTuningOptions, 'parallelism'> {
  const hyperband = /hyperband$/.test(opts.tuner);
  return {
    plugin: opts.plugin,
    tuner: opts.tuner,
    objective: opts.objective,
    ...(opts.maxTrials !== undefined && { maxTrials: opts.maxTrials }),
    epochs: opts.epochs,
    executionsPerTrial: opts.executions,
    maxConsecutiveFailedTrials: opts.maxFailures,
    fixed: parseHp(opts.fix),
    tunerOptions: hyperband ? { maxEpochs: opts.epochs, factor: opts.factor } : {},
    batchSize: opts.batchSize,
    seed: opts.seed,
    experiment: opts.experiment,
    ...(opts.direction && { direction: opts.direction }),
    ...(opts.runName !== undefined && { runName: opts.runName }),
    ...(opts.limitPerLabel !== undefined && { limitPerLabel: opts.limitPerLabel }),
  };
}

function parseDirection(value: string): 'min' | 'max' {
  if (value !== 'min' && value !== 'max')
    throw new InvalidArgumentError(`expected max or min, got '${value}'`);
  return value;
}

function rank(score: number | undefined): number {
  return score ?? Number.NEGATIVE_INFINITY;
}

function formatValue(value: unknown): string {
  return typeof value === 'number' && !Number.isInteger(value)
    ? value.toPrecision(3)
    : String(value ?? '');
}
