import type { Command } from 'commander';
import type { Run } from '../../tracking/tracking-store.js';
import { formatTable } from '../format-table.js';
import { collect, parsePositiveInt } from '../options.js';
import { openWorkspace } from '../workspace.js';
import { experimentByName } from './experiments.js';

const SHOWN_METRICS = 3;

function duration(run: Run): string {
  if (run.endTime === null) return '';
  const s = (run.endTime - run.startTime) / 1000;
  return s < 60 ? `${s.toFixed(1)}s` : `${(s / 60).toFixed(1)}m`;
}

function formatNumber(value: number): string {
  return Number.isFinite(value) ? String(Number(value.toPrecision(4))) : String(value);
}

/** Metrics named by the order-by first (what the user sorts on), then the rest by name. */
function metricSummary(run: Run, preferred: string[]): string {
  const keys = Object.keys(run.metrics).sort(
    (a, b) =>
      (preferred.includes(a) ? 0 : 1) - (preferred.includes(b) ? 0 : 1) || a.localeCompare(b),
  );
  return keys
    .slice(0, SHOWN_METRICS)
    .map((k) => `${k}=${formatNumber(run.metrics[k]!)}`)
    .join(' ');
}

export function registerRuns(program: Command): void {
  const runs = program.command('runs').description('search and inspect tracked runs');

  runs
    .command('list')
    .description(
      'runs, newest first; filter as MLflow: "metrics.val_accuracy > 0.9 AND params.optimizer = \'adam\'"',
    )
    .option('--experiment <name>', 'only runs of this experiment')
    .option('--filter <filter>', 'MLflow search filter')
    .option('--order-by <clause>', "e.g. 'metrics.val_accuracy DESC' (repeatable)", collect, [])
    .option('--max <n>', 'runs per page', parsePositiveInt, 100)
    .option('--page-token <token>', 'next page of the same search')
    .option('--all', 'include deleted runs')
    .option('--json', 'print JSON')
    .action(async (opts, command: Command) => {
      const workspace = await openWorkspace(command.optsWithGlobals());
      try {
        const experimentIds = opts.experiment
          ? [(await experimentByName(workspace.tracking, opts.experiment)).id]
          : undefined;
        const { runs: found, nextPageToken } = await workspace.tracking.searchRuns({
          ...(experimentIds ? { experimentIds } : {}),
          filter: opts.filter ?? '',
          orderBy: opts.orderBy,
          maxResults: opts.max,
          pageToken: opts.pageToken ?? null,
          includeDeleted: opts.all === true,
        });
        if (opts.json) {
          console.log(JSON.stringify({ runs: found, nextPageToken }, jsonNumbers, 2));
          return;
        }
        const preferred = (opts.orderBy as string[])
          .map((o) => /^\s*metrics?\.`?([^`\s]+)`?/i.exec(o)?.[1])
          .filter((k) => k !== undefined);
        console.log(
          formatTable(
            ['run id', 'name', 'status', 'started', 'duration', 'metrics'],
            found.map((r) => [
              r.id,
              r.name,
              r.status,
              new Date(r.startTime).toISOString().replace('T', ' ').slice(0, 19),
              duration(r),
              metricSummary(r, preferred),
            ]),
          ),
        );
        if (nextPageToken) console.log(`more: --page-token ${nextPageToken}`);
      } finally {
        await workspace.close();
      }
    });

  runs
    .command('show')
    .description('a run: status, params, latest metrics, tags and artifacts')
    .argument('<id>', 'run id (32 hex digits)')
    .option('--json', 'print JSON')
    .action(async (id: string, opts: { json?: boolean }, command: Command) => {
      const workspace = await openWorkspace(command.optsWithGlobals());
      try {
        const run = await workspace.tracking.getRun(id);
        const artifacts = await workspace.tracking.listArtifacts(id);
        if (opts.json) {
          console.log(JSON.stringify({ ...run, artifacts }, jsonNumbers, 2));
          return;
        }
        const experiment = await workspace.tracking.getExperiment(run.experimentId);
        const rows: [string, string][] = [
          ['run', `${run.id} (${run.name})`],
          ['experiment', experiment.name],
          ['status', run.lifecycle === 'deleted' ? `${run.status} (deleted)` : run.status],
          ['started', new Date(run.startTime).toISOString()],
          ['ended', run.endTime === null ? '' : new Date(run.endTime).toISOString()],
          ['parent', run.parentRunId ?? ''],
          ['artifacts', run.artifactUri],
        ];
        const section = (title: string, entries: [string, string][]) =>
          entries.length > 0
            ? `\n${title}\n${formatTable(['key', 'value'], entries)}`
            : `\n${title}: none`;
        console.log(formatTable(['', ''], rows).split('\n').slice(1).join('\n'));
        console.log(section('params', Object.entries(run.params)));
        console.log(
          section(
            'metrics',
            Object.entries(run.metrics).map(([k, v]) => [k, formatNumber(v)]),
          ),
        );
        console.log(section('tags', Object.entries(run.tags)));
        console.log(
          section(
            'artifact files',
            artifacts.map((a) => [
              a.path + (a.isDir ? '/' : ''),
              a.bytes === null ? '' : `${a.bytes} B`,
            ]),
          ),
        );
      } finally {
        await workspace.close();
      }
    });
}

/** JSON has no NaN or infinity: write them as strings rather than null. */
function jsonNumbers(_key: string, value: unknown): unknown {
  return typeof value === 'number' && !Number.isFinite(value) ? String(value) : value;
}
