// `npm run bench -- ingest [--images N]`: Menagerie's ingest of generated 512×512 JPEGs,
// by reference and copying into the blob store, against the reference project's metadata
// step (walk folders, Pillow opens each image for its size, rows into SQLite) on the same
// files in the same run. Menagerie does more per image: it decodes every pixel (catching
// truncated files the anchor lets through) and hashes the bytes, so the ratio printed last
// is against the anchor doing the same work (`--decode`); the header-only figure is shown.
import fs from 'node:fs';
import path from 'node:path';
import { openWorkspace } from '../cli/workspace.js';
import { writeDemoDataset } from '../demo/demo-dataset.js';
import { ingestImages } from '../data/ingest/ingest.js';
import { ensurePythonEnv, runPythonJson } from './python-env.js';
import { printFigure, printRatio, timeIt } from './report.js';

const WORK = path.resolve(import.meta.dirname, '.work');

export async function run(args: string[]): Promise<void> {
  const flag = args.indexOf('--images');
  const images = flag >= 0 ? Number(args[flag + 1]) : 2100;
  const perClass = Math.ceil(images / 3);
  const source = path.join(WORK, `ingest-src-${perClass}`);
  console.log(`generating ${perClass * 3} 512×512 JPEGs in ${source} (kept for the next run)`);
  await writeDemoDataset({ dir: source, perClass, seed: 'bench-ingest', size: 512 });

  const { python } = await ensurePythonEnv({ packages: ['pillow'] });
  const anchorRates: Record<string, number> = {};
  for (const mode of ['header', 'decode'] as const) {
    const anchorDb = path.join(WORK, `anchor-ingest-${mode}.db`);
    fs.rmSync(anchorDb, { force: true });
    const anchor = await runPythonJson(python, [
      path.join(import.meta.dirname, 'anchors/ingest_metadata.py'),
      source,
      anchorDb,
      ...(mode === 'decode' ? ['--decode'] : []),
    ]);
    anchorRates[mode] = Number(anchor.images_per_s);
  }
  printFigure('python pillow+sqlite, header only (the reference)', anchorRates.header!, 'images/s');
  printFigure('python pillow+sqlite, sha256 + full decode', anchorRates.decode!, 'images/s');

  const rates: Record<string, number> = {};
  for (const mode of ['reference', 'copy'] as const) {
    const dataDir = path.join(WORK, `ingest-${mode}`);
    fs.rmSync(dataDir, { recursive: true, force: true });
    const workspace = await openWorkspace({ dataDir });
    const { result, seconds } = await timeIt(() =>
      ingestImages(workspace, { source, reference: mode === 'reference' }),
    );
    await workspace.close();
    if (result.added !== perClass * 3)
      throw new Error(`expected ${perClass * 3} added, got ${result.added}`);
    rates[mode] = result.added / seconds;
    printFigure(
      `menagerie ingest ${mode === 'reference' ? '--reference' : '(copy into blob store)'}`,
      rates[mode]!,
      'images/s',
    );
    fs.rmSync(dataDir, { recursive: true, force: true });
  }
  printFigure(
    'menagerie --reference vs header-only reference',
    rates.reference! / anchorRates.header!,
    'x',
  );
  printFigure('menagerie copy vs python decode', rates.copy! / anchorRates.decode!, 'x');
  // Like for like: both sides hash and fully decode every file.
  printRatio(
    'ingest --reference vs python pillow+sqlite with decode',
    rates.reference!,
    anchorRates.decode!,
  );
}
