import path from 'node:path';
import type { Command } from 'commander';
import { writeContactSheet } from '../../demo/contact-sheet.js';
import { writeDemoDataset } from '../../demo/demo-dataset.js';
import { createProgress } from '../progress.js';
import { parseFraction, parsePositiveInt } from '../options.js';

export function registerDemoData(program: Command): void {
  program
    .command('demo-data')
    .description(
      'draw a procedural cat/dog/wild face data set in the AFHQ layout (<dir>/<split>/<label>/*.jpg)',
    )
    .argument('<dir>', 'output folder')
    .option('--per-class <n>', 'images per class, both splits together', parsePositiveInt, 300)
    .option('--seed <seed>', 'the same seed draws the same images', '1')
    .option('--val-fraction <f>', 'share of each class put in val', parseFraction, 0.15)
    .option('--size <px>', 'image width and height', parsePositiveInt, 512)
    .action(async (dir: string, opts) => {
      const progress = createProgress('demo-data');
      const result = await writeDemoDataset({
        dir,
        perClass: opts.perClass,
        seed: opts.seed,
        valFraction: opts.valFraction,
        size: opts.size,
        onProgress: (done, total) => progress.update(done, total),
      });
      progress.finish();
      const sheet = path.join(dir, 'contact-sheet.png');
      await writeContactSheet({ dir, out: sheet });
      console.log(
        `wrote ${result.files} images to ${path.resolve(dir)}; contact sheet ${path.resolve(sheet)}`,
      );
    });
}
