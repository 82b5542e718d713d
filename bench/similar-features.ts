// `npm run bench -- similar-features [--per-class 700] [--dimensions 128] [--queries 300]`:
// what the feature space of similar images keeps when it projects the packaged MobileNetV2
// ×1.4's 1,792 features on their principal components, as serving does: recall@10 of the
// projected space's cosine neighbours against exact cosine search on the full features
// (the anchor: what an exact search on the backbone's own output finds), the share of
// neighbours with the query's label in each, and the cost of projecting a query. Images:
// the demo's drawn faces (`--per-class` of each label, 256×256) and, when present, the real
// AFHQ photos of ../shared/samples/afhq-mini. Features and projection go through the
// product's own functions (decodeToPixels, backboneFeatures, fitProjection, project).
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { openWorkspace } from '../cli/workspace.js';
import { decodeToPixels } from '../data/preprocess.js';
import { writeDemoDataset } from '../demo/demo-dataset.js';
import { DEFAULT_SIMILARITY_BACKBONE, FEATURE_SPACE_DIMENSIONS } from '../serving/feature-space.js';
import { fitProjection, project } from '../serving/pca.js';
import { loadTensorflow } from '../tf/tensorflow.js';
import { backboneFeatures } from '../training/backbone-features.js';
import { loadAverage, numberFlag, percentile, printFigure, printRatio } from './report.js';

const K = 10;
const AFHQ_MINI = path.resolve(import.meta.dirname, '../../shared/samples/afhq-mini');

interface Item {
  label: string;
  features: Float32Array;
}

function normalise(v: Float32Array): Float32Array {
  let s = 0;
  for (const x of v) s += x * x;
  const n = Math.sqrt(s) || 1;
  return Float32Array.from(v, (x) => x / n);
}

/** Exact top-k by cosine (vectors normalised first), the query itself left out. */
function topK(vectors: readonly Float32Array[], q: number, k: number): number[] {
  const query = vectors[q]!;
  const scored: [number, number][] = [];
  vectors.forEach((v, i) => {
    if (i === q) return;
    let dot = 0;
    for (let j = 0; j < v.length; j++) dot += v[j]! * query[j]!;
    scored.push([dot, i]);
  });
  scored.sort((a, b) => b[0] - a[0]);
  return scored.slice(0, k).map(([, i]) => i);
}

async function featuresOf(files: { file: string; label: string }[]): Promise<Item[]> {
  const tf = await loadTensorflow();
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'menagerie-bench-features-'));
  const ws = await openWorkspace({ dataDir: dir });
  try {
    const { plugin, loaded } = await ws.backbones.load(DEFAULT_SIMILARITY_BACKBONE);
    const items: Item[] = [];
    for (let start = 0; start < files.length; start += 64) {
      const chunk = files.slice(start, start + 64);
      const pixels = await Promise.all(
        chunk.map((f) => decodeToPixels(fs.readFileSync(f.file), plugin.inputSpec, f.file)),
      );
      const vectors = backboneFeatures(
        tf,
        loaded,
        plugin.inputSpec,
        pixels.map((p) => ({ pixels: p, view: 0 })),
      );
      chunk.forEach((f, i) => items.push({ label: f.label, features: vectors[i]! }));
    }
    return items;
  } finally {
    await ws.close();
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

function labelled(root: string): { file: string; label: string }[] {
  return fs
    .readdirSync(root, { withFileTypes: true })
    .filter((d) => d.isDirectory())
    .flatMap((d) =>
      fs
        .readdirSync(path.join(root, d.name))
        .filter((f) => /\.(jpe?g|png|webp)$/i.test(f))
        .sort()
        .map((f) => ({ file: path.join(root, d.name, f), label: d.name })),
    );
}

/** Recall@10 of the projected space against the full features, and label agreement. */
async function measure(name: string, items: Item[], dimensions: number, queries: number) {
  const tf = await loadTensorflow();
  const dims = Math.min(dimensions, items[0]!.features.length);
  const started = performance.now();
  const projection = fitProjection(
    tf,
    items.map((i) => i.features),
    dims,
    1,
  );
  printFigure(
    `${name}: fit the ${dims}-d projection on ${items.length}`,
    (performance.now() - started) / 1000,
    's',
  );
  const projected = project(
    tf,
    projection,
    items.map((i) => i.features),
  ).map(normalise);
  // Exact search centres the features as the projection does, so both see the same cloud.
  const centred = items.map((i) =>
    normalise(Float32Array.from(i.features, (x, j) => x - projection.mean[j]!)),
  );
  const picks = Array.from({ length: Math.min(queries, items.length) }, (_, i) =>
    Math.floor((i * items.length) / Math.min(queries, items.length)),
  );
  let hits = 0;
  let sameFull = 0;
  let sameProjected = 0;
  for (const q of picks) {
    const truth = topK(centred, q, K);
    const answer = new Set(topK(projected, q, K));
    hits += truth.filter((i) => answer.has(i)).length;
    sameFull += truth.filter((i) => items[i]!.label === items[q]!.label).length;
    sameProjected += [...answer].filter((i) => items[i]!.label === items[q]!.label).length;
  }
  const total = picks.length * K;
  printFigure(
    `${name}: neighbours of the query's label, full ${items[0]!.features.length}-d`,
    (100 * sameFull) / total,
    '%',
  );
  printFigure(
    `${name}: neighbours of the query's label, projected ${dims}-d`,
    (100 * sameProjected) / total,
    '%',
  );
  const recall = hits / total;
  printFigure(
    `${name}: recall@${K} of the projected space vs exact full-feature search`,
    recall,
    '',
  );
  const times: number[] = [];
  for (let i = 0; i < 200; i++) {
    const t = performance.now();
    project(tf, projection, [items[i % items.length]!.features]);
    times.push(performance.now() - t);
  }
  printFigure(`${name}: projecting one query, p50`, percentile(times, 50), 'ms');
  return recall;
}

export async function run(args: string[]): Promise<void> {
  const perClass = numberFlag(args, '--per-class', 700);
  const dimensions = numberFlag(args, '--dimensions', FEATURE_SPACE_DIMENSIONS);
  const queries = numberFlag(args, '--queries', 300);
  console.log(`load average: ${loadAverage()}`);

  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'menagerie-bench-faces-'));
  try {
    await writeDemoDataset({ dir, perClass, size: 256, seed: 'bench-similar-features' });
    const started = performance.now();
    const faces = await featuresOf([
      ...labelled(path.join(dir, 'train')),
      ...labelled(path.join(dir, 'val')),
    ]);
    printFigure(
      `backbone features of ${faces.length} drawn faces`,
      (performance.now() - started) / faces.length,
      'ms an image',
    );
    let recall = await measure('drawn faces', faces, dimensions, queries);
    if (fs.existsSync(AFHQ_MINI)) {
      const photos = await featuresOf(labelled(AFHQ_MINI));
      // 85 photos: a 128-d projection of 85 points keeps them whole; 16 dimensions shows
      // what a projection smaller than the sample loses.
      await measure('afhq-mini photos', photos, dimensions, queries);
      await measure('afhq-mini photos', photos, 16, queries);
    }
    console.log(`load average: ${loadAverage()}`);
    recall = Math.max(recall, Number.MIN_VALUE);
    printRatio(`recall@${K} projected ${dimensions}-d vs exact full-feature search`, recall, 1);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}
