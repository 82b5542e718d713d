import { InvalidArgumentError, type Command } from 'commander';
import { MenagerieError } from '../../core/errors.js';
import { SPLITS, type Split } from '../../data/tables.js';
import { createModelEvaluations, type ModelEvaluation } from '../../registry/model-evaluations.js';
import { createModelRegistry } from '../../registry/model-registry.js';
import { evaluateModelVersion, WORST_ERRORS } from '../../serving/model-evaluation.js';
import { formatTable } from '../format-table.js';
import { parsePositiveInt } from '../options.js';
import { jsonProgress } from '../progress-json.js';
import { createProgress } from '../progress.js';
import { openWorkspace } from '../workspace.js';
import { abortOnSigint } from './train.js';

interface EvaluateOptions {
  model: string;
  split?: Split;
  worst: number;
  batchSize: number;
  user?: string;
  json?: boolean;
  progressJson?: boolean;
}

/**
 * `menagerie evaluate --model models:/faces@champion <folder|manifest.csv|--split val>`:
 * scores a registered version as serving runs it and stores the result with the version.
 * The server runs it as a child process (`--progress-json`) for `evaluateModel`.
 */
export function registerEvaluate(program: Command): void {
  program
    .command('evaluate')
    .description(
      'score a registered model version on labelled images (a folder, a CSV manifest or a split) ' +
        'through the serving path, and store the evaluation with the version',
    )
    .argument(
      '[source]',
      'a folder (<label>/* or <split>/<label>/*) or a .csv manifest (path,label)',
    )
    .requiredOption(
      '--model <ref>',
      'the version: models:/faces@champion, models:/faces/3, or faces/3, faces@champion',
    )
    .option(
      '--split <split>',
      'evaluate on a split of the catalogue instead: train, val or test',
      parseSplit,
    )
    .option(
      '--worst <n>',
      'most confident mistakes to keep, with their images',
      parseCount,
      WORST_ERRORS,
    )
    .option('--batch-size <n>', 'images per forward pass', parsePositiveInt, 32)
    .option('--user <name>', 'who is recorded as running it (default: the OS user)')
    .option('--json', 'print the whole evaluation as JSON')
    .option('--progress-json', 'print one JSON line per job event on stdout (for the server)')
    .action(async (source: string | undefined, opts: EvaluateOptions, command: Command) => {
      if ((source === undefined) === (opts.split === undefined)) {
        throw new MenagerieError(
          'CONFIG_INVALID',
          'say what to evaluate on: a folder or manifest.csv, or --split val (one of them)',
        );
      }
      const workspace = await openWorkspace(command.optsWithGlobals());
      const controller = abortOnSigint();
      const progress = opts.progressJson ? jsonProgress() : undefined;
      let bar: ReturnType<typeof createProgress> | undefined;
      let evaluationId: string | undefined;
      try {
        const who = opts.user !== undefined ? { user: opts.user } : {};
        const db = workspace.database.db;
        const evaluation = await evaluateModelVersion(
          {
            database: workspace.database,
            blobs: workspace.blobs,
            registry: createModelRegistry({ db, ...who }),
            evaluations: createModelEvaluations({ db, ...who }),
            loaders: workspace,
          },
          {
            model: opts.model,
            data: opts.split !== undefined ? { split: opts.split } : { path: source! },
            worst: opts.worst,
            batchSize: opts.batchSize,
            signal: controller.signal,
            onStart: (e) => {
              evaluationId = e.id;
              progress?.emit({
                event: 'evaluation',
                evaluationId: e.id,
                name: e.name,
                version: e.version,
              });
              if (!progress) bar = createProgress(`evaluate ${e.name} v${e.version}`);
            },
            onProgress: ({ done, total }) => {
              if (progress && evaluationId)
                progress.emit({ event: 'evaluation-progress', evaluationId, done, total });
              bar?.update(done, total);
            },
          },
        );
        bar?.finish();
        if (opts.json) console.log(JSON.stringify(evaluation, null, 2));
        else if (!progress) console.log(formatEvaluation(evaluation));
        if (evaluation.status === 'KILLED') process.exitCode = 130;
      } catch (error) {
        bar?.finish();
        progress?.fail(error, undefined);
        throw error;
      } finally {
        controller.dispose();
        await workspace.close();
      }
    });
}

function parseSplit(value: string): Split {
  if (!(SPLITS as readonly string[]).includes(value))
    throw new InvalidArgumentError(`expected ${SPLITS.join(', ')}, got '${value}'`);
  return value as Split;
}

function parseCount(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 0 || n > 100)
    throw new InvalidArgumentError(`expected a whole number from 0 to 100, got '${value}'`);
  return n;
}

const f4 = (x: number | null) => (x === null ? '-' : x.toFixed(4));

/** The report a person reads: headline, per-class scores, matrix, calibration, what went wrong. */
function formatEvaluation(e: ModelEvaluation): string {
  const lines: string[] = [];
  const { dataset } = e;
  lines.push(
    `evaluation ${e.id}: ${e.name} version ${e.version} on ${dataset.kind} ${dataset.source}, ` +
      `${dataset.imageCount} images (data sha256 ${dataset.sha256?.slice(0, 12) ?? '-'}…) ${e.status}` +
      (e.error ? `: ${e.error}` : ''),
  );
  const s = e.scores;
  if (s) {
    lines.push(
      `accuracy ${f4(s.accuracy)}  macro precision ${f4(s.macroPrecision)}  macro recall ${f4(s.macroRecall)}  ` +
        `macro F1 ${f4(s.macroF1)}  ECE ${f4(s.calibration.ece)}  loss ${f4(s.loss)}`,
      '',
      formatTable(
        ['label', 'precision', 'recall', 'f1', 'support'],
        s.perClass.map((c) => [c.label, f4(c.precision), f4(c.recall), f4(c.f1), c.support]),
      ),
      '',
      'confusion matrix (rows: true label, columns: predicted)',
      formatTable(
        ['', ...s.labels],
        s.labels.map((label, i) => [label, ...(s.confusionMatrix[i] ?? [])]),
      ),
      '',
      `calibration: expected calibration error ${f4(s.calibration.ece)} over ${s.calibration.bins.length} bins`,
      formatTable(
        ['confidence', 'images', 'accuracy', 'mean confidence', 'gap'],
        s.calibration.bins.map((b) => [
          `(${b.lower.toFixed(1)}, ${b.upper.toFixed(1)}]`,
          b.count,
          f4(b.accuracy),
          f4(b.confidence),
          b.accuracy === null || b.confidence === null ? '-' : f4(b.accuracy - b.confidence),
        ]),
      ),
    );
  }
  if (e.worstErrors.length > 0) {
    lines.push(
      '',
      'worst errors (most confident mistakes; images kept in the blob store)',
      formatTable(
        ['rank', 'confidence', 'true', 'predicted', 'image'],
        e.worstErrors.map((w) => [
          w.rank,
          f4(w.confidence),
          w.trueLabel,
          w.predictedLabel,
          w.source,
        ]),
      ),
    );
  }
  if (e.unreadable.length > 0) {
    lines.push('', `left out, unreadable (${e.unreadable.length}):`);
    for (const u of e.unreadable) lines.push(`  ${u.path}: ${u.reason} — ${u.detail}`);
  }
  if (e.unknownLabels.length > 0) {
    lines.push(
      '',
      `left out, labels the model does not know: ${e.unknownLabels.map((u) => `${u.label} (${u.count})`).join(', ')}`,
    );
  }
  return lines.join('\n');
}
