import { InvalidArgumentError, type Command } from 'commander';
import { runTrackedTraining, type JobContext } from '../../jobs/tracked-training.js';
import type { HpValue } from '../../plugin-api/hyperparameters.js';
import type { TrainingObserver } from '../../training/training-observer.js';
import { formatTable } from '../format-table.js';
import { collect, parsePositiveInt } from '../options.js';
import { jsonProgress } from '../progress-json.js';
import { createProgress, formatDuration } from '../progress.js';
import { openWorkspace, type Workspace } from '../workspace.js';

export function registerTrain(program: Command): void {
  program
    .command('train')
    .description('train a model plugin on the train split, validate on val, track it as a run')
    .option('--plugin <name>', 'model plugin', 'cnn')
    .option('--epochs <n>', 'epochs', parsePositiveInt, 10)
    .option('--batch-size <n>', 'batch size', parsePositiveInt, 32)
    .option('--size <px>', 'input size (the cnn plugin: 64, 96 or 128)', parsePositiveInt)
    .option('--hp <name=value>', 'a hyperparameter value (repeatable)', collect, [])
    .option('--seed <n>', 'seed for order, augmentation and initial weights', parseInteger, 42)
    .option('--experiment <name>', 'experiment (created if new)', 'default')
    .option('--run-name <name>', 'run name (default: generated)')
    .option('--no-augment', 'train without augmentation')
    .option('--patience <n>', 'early-stopping patience in epochs (0 turns it off)', parseInteger, 4)
    .option('--limit-per-label <n>', 'at most N images per label and split', parsePositiveInt)
    .option('--json', 'print the result as JSON')
    .option('--progress-json', 'print one JSON line per job event on stdout (for the server)')
    .action(async (opts: TrainOptions, command: Command) => {
      const workspace = await openWorkspace(command.optsWithGlobals());
      const controller = abortOnSigint();
      const progress = opts.progressJson ? jsonProgress() : undefined;
      let runId: string | undefined;
      try {
        const hp = parseHp(opts.hp);
        if (opts.size !== undefined) hp.input_size = opts.size;
        const { result } = await runTrackedTraining(jobContext(workspace), {
          plugin: opts.plugin,
          hp,
          epochs: opts.epochs,
          batchSize: opts.batchSize,
          seed: opts.seed,
          experiment: opts.experiment,
          augment: opts.augment,
          earlyStopping:
            opts.patience > 0 ? { monitor: 'val_loss', patience: opts.patience } : false,
          signal: controller.signal,
          observer: progress?.observer(opts.epochs, () => runId) ?? epochProgress(opts.epochs),
          ...(opts.runName !== undefined && { runName: opts.runName }),
          ...(opts.limitPerLabel !== undefined && { limitPerLabel: opts.limitPerLabel }),
          onRun: (id) => {
            runId = id;
            progress?.emit({ event: 'run', runId: id, kind: 'training' });
            console.error(`run ${id}`);
          },
        });
        if (progress) {
          progress.emit({ event: 'end', runId: runId!, status: result.status });
        } else if (opts.json) {
          console.log(JSON.stringify({ runId, ...result }, null, 2));
        } else {
          const m = result.metrics;
          console.log(
            `run ${runId} ${result.status}` +
              (m
                ? `: val_accuracy ${m.accuracy.toFixed(4)}, val_loss ${m.loss.toFixed(4)} (best epoch ${(result.bestEpoch ?? 0) + 1})`
                : ': no epoch completed'),
          );
          if (m) {
            console.log(
              formatTable(
                ['label', 'precision', 'recall', 'f1', 'support'],
                m.perClass.map((c) => [
                  c.label,
                  c.precision.toFixed(3),
                  c.recall.toFixed(3),
                  c.f1.toFixed(3),
                  c.support,
                ]),
              ),
            );
            console.log(`model: ${result.artifactDir} (confusion_matrix.png beside it)`);
            console.log(`register it: npx menagerie models register --name faces --run ${runId}`);
          }
        }
        if (result.status === 'KILLED') process.exitCode = 130;
      } catch (error) {
        progress?.fail(error, runId);
        throw error;
      } finally {
        controller.dispose();
        await workspace.close();
      }
    });
}

interface TrainOptions {
  plugin: string;
  epochs: number;
  batchSize: number;
  size?: number;
  hp: string[];
  seed: number;
  experiment: string;
  runName?: string;
  augment: boolean;
  patience: number;
  limitPerLabel?: number;
  json?: boolean;
  progressJson?: boolean;
}

/** The services a tracked job needs, from an open workspace. */
export function jobContext(workspace: Workspace): JobContext {
  return {
    db: workspace.database.db,
    blobs: workspace.blobs,
    dataDir: workspace.dataDir,
    plugins: workspace.plugins,
    tracking: workspace.tracking,
    backbones: workspace.backbones,
  };
}

/** Ctrl-C aborts the job (it ends KILLED, keeping its best checkpoint); a second one exits. */
export function abortOnSigint(): AbortController & { dispose(): void } {
  const controller = new AbortController();
  const onSigint = () => {
    if (controller.signal.aborted) process.exit(130);
    console.error('\nstopping after this batch (Ctrl-C again to quit at once)');
    controller.abort();
  };
  process.on('SIGINT', onSigint);
  return Object.assign(controller, { dispose: () => process.off('SIGINT', onSigint) });
}

/** `--hp conv1_filters=64 --hp batch_norm=true` → typed values. */
export function parseHp(pairs: readonly string[]): Record<string, HpValue> {
  const values: Record<string, HpValue> = {};
  for (const pair of pairs) {
    const at = pair.indexOf('=');
    if (at <= 0) throw new InvalidArgumentError(`expected name=value, got '${pair}'`);
    const raw = pair.slice(at + 1).trim();
    values[pair.slice(0, at).trim()] =
      raw === 'true'
        ? true
        : raw === 'false'
          ? false
          : raw !== '' && Number.isFinite(Number(raw))
            ? Number(raw)
            : raw;
  }
  return values;
}

function parseInteger(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 0)
    throw new InvalidArgumentError(`expected a whole number ≥ 0, got '${value}'`);
  return n;
}

/** A bar per epoch with ETA, and a line of metrics when the epoch ends. */
export function epochProgress(epochs: number, prefix = ''): TrainingObserver {
  let bar: ReturnType<typeof createProgress> | undefined;
  let features: ReturnType<typeof createProgress> | undefined;
  return {
    onDataProgress({ done, total }) {
      if (total === 0) return;
      features ??= createProgress(`${prefix}backbone features`, process.stderr);
      features.update(done, total);
      if (done === total) features.finish();
    },
    onBatchEnd(epoch, batch, loss, info) {
      bar ??= createProgress(`${prefix}epoch ${epoch + 1}/${epochs}`, process.stderr, {
        elapsedSeconds: info.seconds,
      });
      bar.update(batch + 1, info.batches, `loss ${loss.toFixed(4)}`);
    },
    onEpochEnd(epoch, metrics, info) {
      bar?.finish();
      bar = undefined;
      const shown = ['loss', 'accuracy', 'val_loss', 'val_accuracy']
        .map((k) => `${k} ${metrics[k]?.toFixed(4) ?? '-'}`)
        .join('  ');
      console.error(
        `${prefix}epoch ${epoch + 1}/${epochs}  ${shown}  lr ${info.lr.toExponential(1)}  ${formatDuration(info.seconds)}`,
      );
    },
  };
}
