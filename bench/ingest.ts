// `npm run bench -- ingest [--images N] [--rounds R]`: Menagerie's ingest of generated
// 512×512 JPEGs by reference as `menagerie ingest --reference` runs it (its default
// `--jpeg-decoder auto`: TensorFlow's libjpeg in child processes for this many files, their
// start included in the first round), and copying into the blob store for information,
// against a Python ingest doing the same work per file (bench/anchors/ingest_metadata.py): read,
// sha256, skip stored hashes, decode at sharp's reduced scale down to 32×32 (Pillow
// `draft`, as data/image-probe.ts decodes through sharp's shrink-on-load) and commit rows to
// SQLite in batches. Runs alternate, anchor then ours, R rounds; each figure is the median.
// The reference project's header-only metadata step is printed too, for information, and
// the same ingest through sharp (`--jpeg-decoder sharp`: small folders and server-side
// ingests, where TensorFlow's load or a blocked event loop would cost more).
// `--backend postgres-s3` ingests into PostgreSQL + S3 instead of SQLite + the local folder
// ($MENAGERIE_DATABASE_URL / $MENAGERIE_STORE_URL, or servers started through dev-services).
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { openWorkspace } from '../cli/workspace.js';
import { writeDemoDataset } from '../demo/demo-dataset.js';
import { ingestImages, type JpegDecoderChoice } from '../data/ingest/ingest.js';
import { benchServices } from './bench-services.js';
import { ensurePythonEnv, runPythonJson } from './python-env.js';
import { loadAverage, numberFlag, percentile, printFigure, printRatio, timeIt } from './report.js';

const WORK = path.resolve(import.meta.dirname, '.work');
const ANCHOR = path.join(import.meta.dirname, 'anchors/ingest_metadata.py');

export async function run(args: string[]): Promise<void> {
  const images = numberFlag(args, '--images', 2100);
  const rounds = numberFlag(args, '--rounds', 5);
  const perClass = Math.ceil(images / 3);
  const scaledOut = args.includes('postgres-s3') ? await benchServices(['postgres', 's3']) : null;
  if (scaledOut) Object.assign(process.env, scaledOut.env);
  const on = scaledOut ? ' into PostgreSQL + S3' : '';
  let fresh = 0;
  /** A new schema and S3 prefix per ingest, so every round starts empty. */
  const target = () => {
    if (!scaledOut) return {};
    const tag = `bench_ingest_${process.pid}_${++fresh}`;
    const store = new URL(scaledOut.env.MENAGERIE_STORE_URL!);
    return {
      database: `${scaledOut.env.MENAGERIE_DATABASE_URL!}?schema=${tag}`,
      store: `s3://${store.hostname}/${tag}${store.search}`,
    };
  };
  const source = path.join(WORK, `ingest-src-${perClass}`);
  console.log(`generating ${perClass * 3} 512×512 JPEGs in ${source} (kept for the next run)`);
  await writeDemoDataset({ dir: source, perClass, seed: 'bench-ingest', size: 512 });
  const { python } = await ensurePythonEnv({ packages: ['pillow'] });
  console.log(
    `${os.availableParallelism()} cores, UV_THREADPOOL_SIZE ${process.env.UV_THREADPOOL_SIZE ?? '4 (default)'}; ` +
      `${rounds} rounds, anchor then menagerie; load average ${loadAverage()}`,
  );

  const anchorDb = path.join(WORK, 'anchor-ingest.db');
  const anchor = async (extra: string[]) => {
    const result = await runPythonJson(python, [ANCHOR, source, anchorDb, ...extra]);
    if (result.images !== perClass * 3) throw new Error(`anchor stored ${String(result.images)}`);
    return Number(result.images_per_s);
  };
  // `auto` is what `menagerie ingest` runs: TensorFlow's libjpeg for this many files.
  const ours = async (reference: boolean, jpegDecoder: JpegDecoderChoice = 'auto') => {
    const dataDir = path.join(WORK, `ingest-${reference ? 'reference' : 'copy'}`);
    fs.rmSync(dataDir, { recursive: true, force: true });
    const workspace = await openWorkspace({ dataDir, ...target() });
    try {
      const { result, seconds } = await timeIt(() =>
        ingestImages(workspace, { source, reference, jpegDecoder }),
      );
      if (result.added !== perClass * 3)
        throw new Error(`expected ${perClass * 3} added, got ${result.added}`);
      return result.added / seconds;
    } finally {
      if (workspace.database.backend === 'postgres')
        await workspace.database.pool.query(`drop schema ${workspace.database.schema} cascade`);
      await workspace.close();
      fs.rmSync(dataDir, { recursive: true, force: true });
    }
  };

  const rates = {
    python: [] as number[],
    reference: [] as number[],
    sharp: [] as number[],
    copy: [] as number[],
  };
  for (let round = 1; round <= rounds; round++) {
    rates.python.push(await anchor([]));
    // The decoder processes' start (about a second, once per process) is timed in round 1 only.
    rates.reference.push(await ours(true));
    rates.sharp.push(await ours(true, 'sharp'));
    rates.copy.push(await ours(false));
    console.log(
      `round ${round}: python ${rates.python.at(-1)!.toFixed(0)}, menagerie --reference ` +
        `${rates.reference.at(-1)!.toFixed(0)} (--jpeg-decoder sharp ` +
        `${rates.sharp.at(-1)!.toFixed(0)}), copy ${rates.copy.at(-1)!.toFixed(0)} images/s; ` +
        `load ${loadAverage()}`,
    );
  }
  await scaledOut?.stop();
  const header = await anchor(['--header']);
  fs.rmSync(anchorDb, { force: true });

  const pythonRate = percentile(rates.python, 50);
  const reference = percentile(rates.reference, 50);
  printFigure('python header only, no hash, no decode (the reference project)', header, 'images/s');
  printFigure('python sha256 + Pillow draft decode to 32×32 + sqlite', pythonRate, 'images/s');
  printFigure(
    `menagerie ingest (copy into the blob store)${on}`,
    percentile(rates.copy, 50),
    'images/s',
  );
  printFigure(
    `menagerie ingest --reference${on} (--jpeg-decoder auto: tensorflow for ${perClass * 3} files)`,
    reference,
    'images/s',
  );
  printFigure(
    `menagerie ingest --reference --jpeg-decoder sharp${on} (small folders, server-side ingests)`,
    percentile(rates.sharp, 50),
    'images/s',
  );
  console.log(`load average after: ${loadAverage()}`);
  printRatio('ingest --reference vs python sha256 + reduced-scale decode', reference, pythonRate);
}
