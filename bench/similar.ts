// `npm run bench -- similar [--vectors N] [--queries Q]`: top-10 similar images over 20,000
// random 128-d embeddings in a sqlite-vec vec0 table (the production store and query), p50
// and p99 per query, goal p50 < 5 ms. The anchor is exact brute-force cosine top-k in numpy
// over the same vectors and queries; the reference project's "similar" (random images of
// the label, `ORDER BY RANDOM() LIMIT 10`) is printed for information.
import fs from 'node:fs';
import path from 'node:path';
import { openDatabase } from '../data/database.js';
import { insertImages, sampleImages } from '../data/image-catalog.js';
import { createRng } from '../core/random.js';
import { openEmbeddingStore, type EmbeddingRow } from '../serving/embedding-store.js';
import { ensurePythonEnv, runPythonJson } from './python-env.js';
import { percentile, printFigure, printRatio } from './report.js';

const WORK = path.resolve(import.meta.dirname, '.work');
const DIM = 128;
const K = 10;
const LABELS = ['cat', 'dog', 'wild'];

function option(args: string[], name: string, fallback: number): number {
  const i = args.indexOf(name);
  return i >= 0 ? Number(args[i + 1]) : fallback;
}

function timeQueries(queries: readonly Float32Array[], run: (q: Float32Array) => unknown) {
  for (const q of queries.slice(0, 20)) run(q); // warm the page cache and statements
  const ms = queries.map((q) => {
    const started = performance.now();
    run(q);
    return performance.now() - started;
  });
  return { p50: percentile(ms, 50), p99: percentile(ms, 99) };
}

export async function run(args: string[]): Promise<void> {
  const count = option(args, '--vectors', 20_000);
  const queryCount = option(args, '--queries', 500);
  const rng = createRng('bench-similar');
  const vector = () => Float32Array.from({ length: DIM }, () => rng.normal(0, 1));
  const rows: EmbeddingRow[] = Array.from({ length: count }, (_, i) => ({
    imageId: i + 1,
    label: LABELS[i % LABELS.length]!,
    embedding: vector(),
  }));
  const queries = Array.from({ length: queryCount }, vector);

  fs.mkdirSync(WORK, { recursive: true });
  const file = path.join(WORK, 'similar.db');
  for (const suffix of ['', '-wal', '-shm']) fs.rmSync(file + suffix, { force: true });
  const database = await openDatabase(file);
  try {
    const store = openEmbeddingStore(database.sqlite, 1, { dimension: DIM, create: true })!;
    for (let i = 0; i < rows.length; i += 1000) store.put(rows.slice(i, i + 1000));
    console.log(`${store.count()} vectors of ${DIM} dimensions in ${store.table} (vec0, cosine)`);

    const all = timeQueries(queries, (q) => store.nearest(q, { k: K }));
    const perLabel = timeQueries(queries, (q) => store.nearest(q, { k: K, label: 'cat' }));
    printFigure(`sqlite-vec top-${K} of ${count} p50`, all.p50, 'ms');
    printFigure(`sqlite-vec top-${K} of ${count} p99`, all.p99, 'ms');
    printFigure(`sqlite-vec top-${K} within one label (1/3) p50`, perLabel.p50, 'ms');
    printFigure(`sqlite-vec top-${K} within one label (1/3) p99`, perLabel.p99, 'ms');

    // The reference behaviour, over the same number of image rows.
    await insertImages(
      database.db,
      rows.map((r) => ({
        label: r.label,
        sha256: r.imageId.toString(16).padStart(64, '0'),
        uri: `blob:bench/${r.imageId}`,
        split: 'train' as const,
        width: 64,
        height: 64,
        format: 'jpeg',
        bytes: 1,
        source_path: null,
        added_at: 0,
      })),
    );
    const randomMs: number[] = [];
    for (let i = 0; i < 200; i++) {
      const started = performance.now();
      await sampleImages(database.db, { label: LABELS[i % 3]!, n: K });
      randomMs.push(performance.now() - started);
    }
    printFigure(
      `reference: ORDER BY RANDOM() LIMIT ${K} per label p50`,
      percentile(randomMs, 50),
      'ms',
    );

    const vectorsFile = path.join(WORK, 'similar-vectors.f32');
    const queriesFile = path.join(WORK, 'similar-queries.f32');
    const concat = (list: readonly Float32Array[]) => {
      const out = new Float32Array(list.length * DIM);
      list.forEach((v, i) => out.set(v, i * DIM));
      return Buffer.from(out.buffer);
    };
    fs.writeFileSync(vectorsFile, concat(rows.map((r) => r.embedding)));
    fs.writeFileSync(queriesFile, concat(queries));
    const { python } = await ensurePythonEnv({ packages: ['numpy'] });
    const anchor = await runPythonJson(python, [
      path.join(import.meta.dirname, 'anchors/similar_numpy.py'),
      vectorsFile,
      queriesFile,
      String(DIM),
      String(K),
    ]);
    const anchorP50 = Number(anchor.p50_ms);
    printFigure(`numpy brute-force top-${K} of ${count} p50`, anchorP50, 'ms');
    printFigure(`numpy brute-force top-${K} of ${count} p99`, Number(anchor.p99_ms), 'ms');
    // Both are exact searches: their answers must agree.
    const ours = store.nearest(queries[0]!, { k: K }).map((n) => n.imageId - 1);
    const theirs = anchor.first_ids as number[];
    if (JSON.stringify(ours) !== JSON.stringify(theirs))
      console.log(
        `warning: answers differ: sqlite-vec ${ours.join(',')} numpy ${theirs.join(',')}`,
      );
    console.log(`goal p50 < 5 ms: ${all.p50 < 5 ? 'met' : 'missed'}`);
    printRatio(`similar top-${K} p50 vs numpy brute force`, all.p50, anchorP50, false);
  } finally {
    await database.close();
  }
}
