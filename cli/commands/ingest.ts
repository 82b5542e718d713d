import { InvalidArgumentError, type Command } from 'commander';
import {
  AUTO_TENSORFLOW_FILES,
  ingestImages,
  type IngestReport,
  type JpegDecoderChoice,
} from '../../data/ingest/ingest.js';
import { parseLabelMap } from '../../data/label-name.js';
import { formatCounts } from '../format-table.js';
import { createProgress } from '../progress.js';
import { openWorkspace } from '../workspace.js';
import { collect, parseFraction, parsePositiveInt } from '../options.js';

const LISTED_REJECTIONS = 20;

export function registerIngest(program: Command): void {
  program
    .command('ingest')
    .description(
      'add images from <source>: <split>/<label>/*, <label>/* or a CSV manifest (path,label[,split])',
    )
    .argument('<source>', 'folder or .csv manifest')
    .option('--reference', 'record files where they are (file:// URIs) instead of copying them')
    .option(
      '--val-fraction <f>',
      'share put in val when the source names no split',
      parseFraction,
      0.2,
    )
    .option('--label-map <from=to>', 'rename a label (repeatable)', collect, [])
    .option('--max-pixels <n>', 'reject images with more pixels', parsePositiveInt)
    .option(
      '--concurrency <n>',
      'files decoded at once (default: 4 with sharp, 16 with tensorflow)',
      parsePositiveInt,
    )
    .option(
      '--jpeg-decoder <decoder>',
      `what proves JPEGs whole: 'sharp', 'tensorflow' (a third of the CPU per file, in child processes that take about a second to start) or 'auto' (tensorflow from ${AUTO_TENSORFLOW_FILES} files up)`,
      parseJpegDecoder,
      'auto',
    )
    .option('--json', 'print the full report as JSON on stdout')
    .action(async (source: string, opts, command: Command) => {
      const workspace = await openWorkspace(command.optsWithGlobals());
      const progress = createProgress('ingest');
      const abort = new AbortController();
      const onSigint = () => abort.abort();
      process.once('SIGINT', onSigint);
      try {
        const report = await ingestImages(workspace, {
          source,
          reference: opts.reference === true,
          valFraction: opts.valFraction,
          labelMap: parseLabelMap(opts.labelMap),
          maxPixels: opts.maxPixels,
          concurrency: opts.concurrency,
          jpegDecoder: opts.jpegDecoder,
          signal: abort.signal,
          onProgress: (p) =>
            progress.update(p.done, p.total, `added ${p.added} rejected ${p.rejected}`),
        });
        progress.finish();
        if (opts.json) console.log(JSON.stringify(report, null, 2));
        else console.log(formatReport(report));
        if (report.interrupted) process.exitCode = 130;
      } finally {
        process.off('SIGINT', onSigint);
        await workspace.close();
      }
    });
}

function parseJpegDecoder(value: string): JpegDecoderChoice {
  if (value === 'sharp' || value === 'tensorflow' || value === 'auto') return value;
  throw new InvalidArgumentError("expected 'sharp', 'tensorflow' or 'auto'");
}

export function formatReport(report: IngestReport): string {
  const rate = report.seconds > 0 ? (report.total / report.seconds).toFixed(0) : '-';
  const lines = [
    `${report.interrupted ? 'interrupted after' : 'ingested'} ${report.total} files ` +
      `(${report.layout} layout) in ${report.seconds.toFixed(1)}s, ${rate} files/s`,
    `  added       ${report.added}`,
    `  unchanged   ${report.unchanged}  (already ingested from the same path)`,
    `  duplicates  ${report.duplicates.length}  (same bytes as a stored image; stored once)`,
    `  rejected    ${report.rejected.length}`,
  ];
  const byReason = new Map<string, number>();
  for (const r of report.rejected) byReason.set(r.reason, (byReason.get(r.reason) ?? 0) + 1);
  for (const [reason, n] of byReason) lines.push(`    ${reason}: ${n}`);
  if (report.ignored) lines.push(`  ignored     ${report.ignored}  (hidden files)`);
  if (report.sweptBlobs)
    lines.push(`  swept ${report.sweptBlobs} unreferenced blobs left by an interrupted run`);
  for (const r of report.rejected.slice(0, LISTED_REJECTIONS)) {
    lines.push(`  rejected ${r.path}: ${r.reason}: ${r.detail}`);
  }
  if (report.rejected.length > LISTED_REJECTIONS) {
    lines.push(
      `  … and ${report.rejected.length - LISTED_REJECTIONS} more rejected (--json lists all)`,
    );
  }
  for (const d of report.duplicates.slice(0, LISTED_REJECTIONS))
    lines.push(`  duplicate ${d.path} = ${d.sameAs}`);
  lines.push('', formatCounts(report.counts));
  return lines.join('\n');
}
