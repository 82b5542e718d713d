import path from 'node:path';
import type { Command } from 'commander';
import { writeDemoDataset } from '../../data/demo/demo-dataset.js';
import { ingestImages } from '../../data/ingest/ingest.js';
import { formatCounts } from '../format-table.js';
import { createProgress } from '../progress.js';
import { parsePositiveInt } from '../options.js';
import { openWorkspace } from '../workspace.js';

export function registerDemo(program: Command): void {
  program
    .command('demo')
    .description(
      'the whole loop on generated data: draw the demo set and ingest it (reuses what exists)',
    )
    .option('--per-class <n>', 'demo images per class', parsePositiveInt, 400)
    .option('--seed <seed>', 'demo data seed', '1')
    .action(async (opts, command: Command) => {
      const workspace = await openWorkspace(command.optsWithGlobals());
      try {
        const dir = path.join(workspace.dataDir, 'demo-data');
        const drawn = createProgress('demo-data');
        const written = await writeDemoDataset({
          dir,
          perClass: opts.perClass,
          seed: opts.seed,
          onProgress: (done, total) => drawn.update(done, total),
        });
        drawn.finish();
        const ingestProgress = createProgress('ingest');
        const report = await ingestImages(workspace, {
          source: dir,
          onProgress: (p) => ingestProgress.update(p.done, p.total),
        });
        ingestProgress.finish();
        console.log(
          `demo data: ${written.files} images in ${dir}; ${report.added} added, ${report.unchanged} already there`,
        );
        console.log(formatCounts(report.counts));
      } finally {
        await workspace.close();
      }
    });
}
