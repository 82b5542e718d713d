import { InvalidArgumentError, type Command } from 'commander';
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
    .option('--json', 'print the result as JSON')
    .option('--progress-json', 'print one JSON line per job event on stdout (for the server)')
    .action(async (opts: TuneOptions, command: Command) => {
      const workspace = await openWorkspace(command.optsWithGlobals());
      const controller = abortOnSigint();
      const progress = opts.progressJson ? jsonProgress() : undefined;
      let tuningRunId: string | undefined;
      let trialRunId: string | undefined;
      try {
        const hyperband = /hyperband$/.test(opts.tuner);
        const { runId, outcome } = await runTrackedTuning(jobContext(workspace), {
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
          signal: controller.signal,
          observer:
            progress?.observer(
              opts.epochs,
              () => trialRunId,
              () => tuningRunId,
            ) ?? epochProgress(opts.epochs, '  '),
          ...(opts.direction && { direction: opts.direction }),
          ...(opts.runName !== undefined && { runName: opts.runName }),
          ...(opts.limitPerLabel !== undefined && { limitPerLabel: opts.limitPerLabel }),
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
