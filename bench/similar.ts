// `npm run bench -- similar [--backend sqlite|postgres|both] [--sizes 20000,200000]
// [--queries Q] [--database postgres://…]`: top-10 similar images through the vector index
// (the production store and query) over 20,000 and 200,000 clustered 128-d embeddings, on
// sqlite-vec and on pgvector (exact below its HNSW threshold, HNSW above), p50 and p99 per
// query, and recall@10 against exact search. PostgreSQL is `--database`,
// $MENAGERIE_DATABASE_URL, or one started here through dev-services (and stopped after).
// The anchor is exact brute-force cosine top-k in numpy over the first size; the reference
// project's "similar" (`ORDER BY RANDOM() LIMIT 10` within a label) is printed too.
import fs from 'node:fs';
import path from 'node:path';
import { openDatabase, type OpenDatabase } from '../data/database.js';
import { insertImages, sampleImages } from '../data/image-catalog.js';
import { createRng } from '../core/random.js';
import { vectorIndex, type VectorIndex, type VectorItem } from '../serving/vector-index.js';
import { benchServices } from './bench-services.js';
import { ensurePythonEnv, runPythonJson } from './python-env.js';
import { numberFlag, percentile, printFigure, printRatio } from './report.js';

const WORK = path.resolve(import.meta.dirname, '.work');
const DIM = 128;
const K = 10;
const LABELS = ['cat', 'dog', 'wild'];
const CLUSTERS = 200;
/** Looks within a class (pose, colour…): what makes a near neighbour near. */
const SUBCLUSTERS = 20;
const SPACE = 'model-version:1';

function flag(args: string[], name: string): string | undefined {
  const i = args.indexOf(name);
  return i >= 0 ? args[i + 1] : undefined;
}

/**
 * Embeddings of a trained model cluster by class, and within a class by look: 200 clusters
 * of 20 sub-clusters each, points spread around those. Uniform noise would understate an
 * approximate index's recall (every neighbour nearly as far as any other).
 */
function clustered(seed: string, n: number): VectorItem[] {
  const rng = createRng(seed);
  const around = (centre: Float32Array, sd: number) =>
    Float32Array.from(centre, (x) => x + rng.normal(0, sd));
  const centres = Array.from({ length: CLUSTERS }, () =>
    Float32Array.from({ length: DIM }, () => rng.normal(0, 1)),
  );
  const looks = centres.map((c) => Array.from({ length: SUBCLUSTERS }, () => around(c, 0.35)));
  return Array.from({ length: n }, (_, i) => {
    const c = rng.int(0, CLUSTERS - 1);
    return {
      id: i + 1,
      label: LABELS[c % LABELS.length]!,
      vector: around(looks[c]![rng.int(0, SUBCLUSTERS - 1)]!, 0.1),
    };
  });
}

/** Exact top-k by cosine distance, in plain loops: the truth recall is measured against. */
function exactTopK(items: readonly VectorItem[], query: Float32Array, k: number, label?: string) {
  const norm = (v: Float32Array) => Math.sqrt(v.reduce((s, x) => s + x * x, 0));
  const qn = norm(query);
  const scored: [number, number][] = [];
  for (const item of items) {
    if (label !== undefined && item.label !== label) continue;
    let dot = 0;
    for (let d = 0; d < DIM; d++) dot += item.vector[d]! * query[d]!;
    scored.push([1 - dot / (qn * norm(item.vector)), item.id]);
  }
  return scored
    .sort((a, b) => a[0] - b[0] || a[1] - b[1])
    .slice(0, k)
    .map((s) => s[1]);
}

/** Each query alone, or (`sameLabel`) within its own label, as serving asks with the predicted one. */
async function timeQueries(
  index: VectorIndex,
  queries: readonly VectorItem[],
  sameLabel: boolean,
): Promise<{ p50: number; p99: number; answers: number[][] }> {
  const options = (q: VectorItem) => (sameLabel ? { label: q.label } : {});
  for (const q of queries.slice(0, 20)) await index.query(SPACE, q.vector, K, options(q));
  const ms: number[] = [];
  const answers: number[][] = [];
  for (const q of queries) {
    const started = performance.now();
    const found = await index.query(SPACE, q.vector, K, options(q));
    ms.push(performance.now() - started);
    answers.push(found.map((n) => n.id));
  }
  return { p50: percentile(ms, 50), p99: percentile(ms, 99), answers };
}

function recall(answers: number[][], truth: number[][]): number {
  let hit = 0;
  let total = 0;
  answers.forEach((a, i) => {
    const t = new Set(truth[i]);
    hit += a.filter((id) => t.has(id)).length;
    total += t.size;
  });
  return total === 0 ? 1 : hit / total;
}

/** A PostgreSQL URL: `--database`, $MENAGERIE_DATABASE_URL, or a server started here. */
async function postgresUrl(args: string[]): Promise<{ url: string; stop: () => Promise<void> }> {
  const given = flag(args, '--database');
  if (given) return { url: given, stop: async () => {} };
  const services = await benchServices(['postgres']);
  return { url: services.env.MENAGERIE_DATABASE_URL!, stop: services.stop };
}

async function openBackend(backend: string, size: number, pg: string | undefined) {
  if (backend === 'postgres') {
    const database = await openDatabase(`${pg!}?schema=bench_similar_${size}`);
    if (database.backend === 'postgres')
      await database.pool.query(`drop schema ${database.schema} cascade`);
    await database.close();
    return openDatabase(`${pg!}?schema=bench_similar_${size}`);
  }
  fs.mkdirSync(WORK, { recursive: true });
  const file = path.join(WORK, `similar-${size}.db`);
  for (const suffix of ['', '-wal', '-shm']) fs.rmSync(file + suffix, { force: true });
  return openDatabase(file);
}

export async function run(args: string[]): Promise<void> {
  const which = flag(args, '--backend') ?? 'both';
  const backends = which === 'both' ? ['sqlite', 'postgres'] : [which];
  const sizes = (flag(args, '--sizes') ?? '20000,200000').split(',').map(Number);
  const queryCount = numberFlag(args, '--queries', 200);
  const pg = backends.includes('postgres') ? await postgresUrl(args) : undefined;
  // Queries are more points of the same distribution (new uploads of the same animals).
  const generated = clustered('bench-similar', Math.max(...sizes) + queryCount);
  const all = generated.slice(0, Math.max(...sizes));
  const queries = generated.slice(-queryCount);
  let firstP50 = Number.NaN;
  try {
    for (const size of sizes) {
      const items = all.slice(0, size);
      const truth = queries.map((q) => exactTopK(items, q.vector, K));
      const truthLabel = queries.map((q) => exactTopK(items, q.vector, K, q.label));
      for (const backend of backends) {
        const database: OpenDatabase = await openBackend(backend, size, pg?.url);
        try {
          const index = vectorIndex(database);
          const loadStart = performance.now();
          await index.ensure(SPACE, DIM);
          for (let i = 0; i < items.length; i += 5000)
            await index.upsert(SPACE, items.slice(i, i + 5000));
          const loaded = performance.now() - loadStart;
          const buildStart = performance.now();
          const method = await index.optimize(SPACE);
          const built = performance.now() - buildStart;
          const name = `${index.kind} (${method})`;
          console.log(
            `${backend}: ${size} vectors of ${DIM} dimensions loaded in ${(loaded / 1000).toFixed(1)} s` +
              (method === 'hnsw' ? `, HNSW built in ${(built / 1000).toFixed(1)} s` : ''),
          );
          const any = await timeQueries(index, queries, false);
          const own = await timeQueries(index, queries, true);
          printFigure(`${name} top-${K} of ${size} p50`, any.p50, 'ms');
          printFigure(`${name} top-${K} of ${size} p99`, any.p99, 'ms');
          printFigure(
            `${name} top-${K} of ${size} recall vs exact`,
            recall(any.answers, truth),
            '',
          );
          printFigure(`${name} top-${K} within its label (1/3) p50`, own.p50, 'ms');
          printFigure(`${name} top-${K} within its label (1/3) p99`, own.p99, 'ms');
          printFigure(
            `${name} top-${K} within its label recall vs exact`,
            recall(own.answers, truthLabel),
            '',
          );
          if (backend === backends[0] && size === sizes[0]) {
            firstP50 = any.p50;
            await referenceRandom(database, items);
          }
        } finally {
          await database.close();
        }
      }
    }
  } finally {
    await pg?.stop();
  }

  const first = all.slice(0, sizes[0]);
  const vectorsFile = path.join(WORK, 'similar-vectors.f32');
  const queriesFile = path.join(WORK, 'similar-queries.f32');
  const concat = (list: readonly Float32Array[]) => {
    const out = new Float32Array(list.length * DIM);
    list.forEach((v, i) => out.set(v, i * DIM));
    return Buffer.from(out.buffer);
  };
  fs.mkdirSync(WORK, { recursive: true });
  fs.writeFileSync(vectorsFile, concat(first.map((r) => r.vector)));
  fs.writeFileSync(queriesFile, concat(queries.map((q) => q.vector)));
  const { python } = await ensurePythonEnv({ packages: ['numpy'] });
  const anchor = await runPythonJson(python, [
    path.join(import.meta.dirname, 'anchors/similar_numpy.py'),
    vectorsFile,
    queriesFile,
    String(DIM),
    String(K),
  ]);
  const anchorP50 = Number(anchor.p50_ms);
  printFigure(`numpy brute-force top-${K} of ${sizes[0]} p50`, anchorP50, 'ms');
  printFigure(`numpy brute-force top-${K} of ${sizes[0]} p99`, Number(anchor.p99_ms), 'ms');
  printRatio(
    `similar top-${K} of ${sizes[0]} p50 (${backends[0]}) vs numpy brute force`,
    firstP50,
    anchorP50,
    false,
  );
}

/** The reference behaviour, over the same number of image rows. */
async function referenceRandom(database: OpenDatabase, items: readonly VectorItem[]) {
  await insertImages(
    database.db,
    items.map((r) => ({
      label: r.label,
      sha256: r.id.toString(16).padStart(64, '0'),
      uri: `blob:bench/${r.id}`,
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
}
