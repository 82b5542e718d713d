import fs from 'node:fs';
import path from 'node:path';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isMenagerieError } from '../../core/errors.js';
import { createImageService } from '../../data/image-service.js';
import { sweepOrphanBlobs } from '../../data/ingest/ingest.js';
import { createModelEvaluations } from '../../registry/model-evaluations.js';
import { createModelRegistry } from '../../registry/model-registry.js';
import { evaluateModelVersion, type EvaluationDeps } from '../../serving/model-evaluation.js';
import { loadTensorflow } from '../../tf/tensorflow.js';
import { jobContext } from '../../cli/commands/train.js';
import { decodeToPixels } from '../../data/preprocess.js';
import { runTrackedTraining } from '../../jobs/tracked-training.js';
import { registerModelArtifact, registerRunModel } from '../../registry/register-model.js';
import { loadServedModel } from '../../serving/served-model.js';
import {
  COLOUR_IMAGES,
  solidPng,
  UNKNOWN_COLOUR_IMAGES,
  writeColourFolder,
} from '../helpers/evaluation-data.js';
import { writeFile } from '../helpers/fixtures.js';
import { COLOUR_LABELS, colourProbabilities, saveColourModel } from '../helpers/models.js';
import { tempWorkspace } from '../helpers/workspace.js';

const IMAGES = COLOUR_IMAGES;
const UNKNOWN = UNKNOWN_COLOUR_IMAGES;
const solid = solidPng;

/**
 * The expected scores, computed here from the closed-form probabilities without any of
 * Menagerie's metric code: confusion counts, accuracy, per-class scores and ECE (10 bins).
 */
function expectedScores() {
  const k = COLOUR_LABELS.length;
  const confusion = Array.from({ length: k }, () => new Array<number>(k).fill(0));
  const bins = Array.from({ length: 10 }, () => ({ n: 0, right: 0, conf: 0 }));
  const mistakes: { source: string; confidence: number; predicted: string }[] = [];
  for (const image of IMAGES) {
    const p = colourProbabilities(image.rgb);
    const predicted = p.indexOf(Math.max(...p));
    const truth = COLOUR_LABELS.indexOf(image.label as (typeof COLOUR_LABELS)[number]);
    confusion[truth]![predicted]! += 1;
    const confidence = p[predicted]!;
    // Far from a bin edge, so float32 inference cannot move it to the next bin.
    expect(Math.abs(confidence * 10 - Math.round(confidence * 10))).toBeGreaterThan(1e-3);
    const bin = bins[Math.min(9, Math.floor(confidence * 10))]!;
    bin.n += 1;
    bin.conf += confidence;
    if (predicted === truth) bin.right += 1;
    else
      mistakes.push({
        source: `${image.label}/${image.name}`,
        confidence,
        predicted: COLOUR_LABELS[predicted]!,
      });
  }
  const ece = bins.reduce(
    (sum, b) => (b.n ? sum + (b.n / IMAGES.length) * Math.abs(b.right / b.n - b.conf / b.n) : sum),
    0,
  );
  const perClass = COLOUR_LABELS.map((label, c) => {
    const tp = confusion[c]![c]!;
    const support = confusion[c]!.reduce((a, b) => a + b, 0);
    const predicted = confusion.reduce((a, row) => a + row[c]!, 0);
    const precision = predicted ? tp / predicted : 0;
    const recall = support ? tp / support : 0;
    const f1 = precision + recall ? (2 * precision * recall) / (precision + recall) : 0;
    return { label, precision, recall, f1, support };
  });
  const correct = COLOUR_LABELS.reduce((a, _, c) => a + confusion[c]![c]!, 0);
  mistakes.sort((a, b) => b.confidence - a.confidence);
  return {
    confusion,
    ece,
    perClass,
    accuracy: correct / IMAGES.length,
    bins: bins.map((b) => b.n),
    mistakes,
  };
}

describe('evaluating a model version through the serving path', () => {
  let ws: Awaited<ReturnType<typeof tempWorkspace>>;
  let deps: EvaluationDeps;
  let folder: string;

  beforeAll(async () => {
    ws = await tempWorkspace();
    const registry = createModelRegistry({ db: ws.database.db, user: 'tester' });
    deps = {
      database: ws.database,
      blobs: ws.blobs,
      registry,
      evaluations: createModelEvaluations({ db: ws.database.db, user: 'tester' }),
      loaders: ws,
    };
    const dir = path.join(ws.dataDir, 'colour-model');
    await saveColourModel(dir);
    await registerModelArtifact(registry, ws.plugins, { name: 'colours', dir });
    await registry.promoteChampion('colours', 1);

    folder = path.join(ws.dataDir, 'holdout');
    await writeColourFolder(folder);
  });

  afterAll(async () => {
    await ws?.dispose();
  });

  it('reports corrupt, empty and misplaced files, and still scores the rest exactly', async () => {
    const tf = await loadTensorflow();
    const tensorsBefore = tf.memory().numTensors;
    const progress: { done: number; total: number }[] = [];
    const evaluation = await evaluateModelVersion(deps, {
      model: 'models:/colours@champion',
      data: { path: folder },
      batchSize: 4,
      onProgress: (p) => progress.push(p),
    });
    expect(tf.memory().numTensors, 'no tensor is left behind').toBe(tensorsBefore);

    expect(evaluation.status).toBe('FINISHED');
    expect(
      evaluation.unreadable.map((u) => [path.relative(folder, u.path), u.reason]).sort(),
    ).toEqual([
      ['README.txt', 'unknown-folder'],
      ['blue/empty.jpg', 'empty'],
      ['green/notes.jpg', 'unreadable'],
      ['red/truncated.jpg', 'unreadable'],
    ]);
    expect(evaluation.unknownLabels).toEqual([{ label: 'purple', count: 2 }]);
    expect(evaluation.dataset).toMatchObject({
      kind: 'folder',
      source: folder,
      imageCount: IMAGES.length,
    });
    // 9 readable images of known labels plus the 3 broken ones are looked at, 4 at a time.
    expect(progress.map((p) => p.done)).toEqual([0, 4, 8, 12]);
    expect(progress.every((p) => p.total === 12)).toBe(true);

    const expected = expectedScores();
    const scores = evaluation.scores!;
    expect(scores.labels).toEqual([...COLOUR_LABELS]);
    expect(scores.confusionMatrix).toEqual(expected.confusion);
    expect(scores.accuracy).toBe(expected.accuracy);
    scores.perClass.forEach((c, i) => {
      const e = expected.perClass[i]!;
      expect(c.label).toBe(e.label);
      expect(c.support).toBe(e.support);
      expect(c.precision).toBeCloseTo(e.precision, 12);
      expect(c.recall).toBeCloseTo(e.recall, 12);
      expect(c.f1).toBeCloseTo(e.f1, 12);
    });
    // Probabilities come from float32 inference: equal to the float64 ones to ~1e-7.
    expect(scores.calibration.ece).toBeCloseTo(expected.ece, 6);
    expect(scores.calibration.bins.map((b) => b.count)).toEqual(expected.bins);
    expect(scores.calibration.bins[0]).toMatchObject({ lower: 0, upper: 0.1 });

    // The most confident mistakes first, each with its image kept in the blob store.
    expect(
      evaluation.worstErrors.map((w) => [path.relative(folder, w.source), w.predictedLabel]),
    ).toEqual(expected.mistakes.map((m) => [m.source, m.predicted]));
    for (const [i, w] of evaluation.worstErrors.entries()) {
      expect(w.rank).toBe(i + 1);
      expect(w.confidence).toBeCloseTo(expected.mistakes[i]!.confidence, 6);
      expect(w.imageId).toBeNull();
      expect(w.format).toBe('png');
      expect(await ws.blobs.get(w.blobUri)).toEqual(fs.readFileSync(w.source));
    }
    const png = await ws.blobs.get(evaluation.confusionMatrixUri!);
    expect((await sharp(png).metadata()).format).toBe('png');
  });

  it('stores the evaluation linked to its version, newest first', async () => {
    const first = await evaluateModelVersion(deps, {
      model: 'colours/1',
      data: { path: folder },
      createdBy: 'ana',
    });
    const listed = await deps.evaluations.list('colours', 1);
    expect(listed[0]!.id).toBe(first.id);
    expect(listed[0]).toMatchObject({ name: 'colours', version: 1, createdBy: 'ana' });
    expect(await deps.evaluations.get(first.id)).toEqual(first);
    expect(listed.every((e) => e.dataset.sha256 === first.dataset.sha256)).toBe(true);
  });

  it('keeps the blobs an evaluation names through a sweep of orphans', async () => {
    const [latest] = await deps.evaluations.list('colours', 1);
    const orphan = await ws.blobs.put(Buffer.from('nobody names me'), { ext: 'bin' });
    await sweepOrphanBlobs(ws, Date.now() + 60_000);
    expect(await ws.blobs.stat(orphan)).toBeNull();
    for (const uri of [latest!.confusionMatrixUri!, ...latest!.worstErrors.map((w) => w.blobUri)])
      expect(await ws.blobs.stat(uri), uri).not.toBeNull();
  });

  it('gives a split of the catalogue the same data hash as the same images in a folder', async () => {
    const images = createImageService(ws);
    for (const image of [...IMAGES, ...UNKNOWN])
      await images.add(await solid(image.rgb), { label: image.label, split: 'val' });
    const blobsBefore = await countBlobs(ws.blobs);
    const fromSplit = await evaluateModelVersion(deps, {
      model: 'models:/colours/1',
      data: { split: 'val' },
    });
    const fromFolder = (await deps.evaluations.list('colours', 1)).find(
      (e) => e.dataset.kind === 'folder',
    )!;
    expect(fromSplit.dataset).toMatchObject({ kind: 'split', source: 'val', imageCount: 9 });
    expect(fromSplit.dataset.sha256).toBe(fromFolder.dataset.sha256);
    expect(fromSplit.scores!.confusionMatrix).toEqual(fromFolder.scores!.confusionMatrix);
    expect(fromSplit.unreadable).toEqual([]);
    expect(fromSplit.unknownLabels).toEqual([{ label: 'purple', count: 2 }]);
    // Catalogue images are linked, not copied; the confusion-matrix PNG is the folder
    // evaluation's, byte for byte, so the content-addressed store holds it once.
    for (const w of fromSplit.worstErrors) {
      const image = await images.get(w.imageId!);
      expect(image?.uri).toBe(w.blobUri);
    }
    expect(await countBlobs(ws.blobs)).toBe(blobsBefore);
  });

  it('reads a CSV manifest, paths relative to it, a missing file reported as not-found', async () => {
    const manifest = writeFile(
      path.join(ws.dataDir, 'lists', 'holdout.csv'),
      'path,label\n../holdout/red/pure.png,red\n../holdout/green/brick.png,green\n../holdout/gone.png,blue\n',
    );
    const evaluation = await evaluateModelVersion(deps, {
      model: 'colours/1',
      data: { path: manifest },
    });
    expect(evaluation.dataset).toMatchObject({ kind: 'manifest', source: manifest, imageCount: 2 });
    expect(evaluation.scores!.confusionMatrix).toEqual([
      [1, 0, 0],
      [1, 0, 0],
      [0, 0, 0],
    ]);
    expect(evaluation.unreadable).toEqual([
      expect.objectContaining({
        path: path.join(ws.dataDir, 'holdout', 'gone.png'),
        reason: 'not-found',
      }),
    ]);
  });

  it('ends FAILED with EVALUATION_NO_IMAGES when nothing can be scored, saying why', async () => {
    const broken = path.join(ws.dataDir, 'all-broken');
    writeFile(path.join(broken, 'red', 'empty.jpg'), Buffer.alloc(0));
    writeFile(path.join(broken, 'purple', 'a.png'), await solid([128, 0, 128]));
    const error = await evaluateModelVersion(deps, {
      model: 'colours/1',
      data: { path: broken },
    }).catch((e: unknown) => e);
    expect(isMenagerieError(error, 'EVALUATION_NO_IMAGES')).toBe(true);
    const failed = (await deps.evaluations.list('colours', 1))[0]!;
    expect(failed.status).toBe('FAILED');
    expect(failed.error).toMatch(/could be read/);
    expect(failed.unreadable.map((u) => u.reason)).toEqual(['empty']);
    expect(failed.unknownLabels).toEqual([{ label: 'purple', count: 1 }]);
  });

  it('refuses a bad model reference or a missing folder before recording anything', async () => {
    const count = async () => (await deps.evaluations.list('colours', 1)).length;
    const before = await count();
    for (const [model, data, code] of [
      ['colours', { path: folder }, 'MODEL_URI_INVALID'],
      ['models:/nope@champion', { path: folder }, 'MODEL_NOT_FOUND'],
      ['colours/9', { path: folder }, 'MODEL_VERSION_NOT_FOUND'],
      ['colours/1', { path: path.join(folder, 'missing') }, 'INGEST_SOURCE_NOT_FOUND'],
      ['colours/1', { split: 'test' }, 'DATASET_EMPTY'],
    ] as const) {
      const error = await evaluateModelVersion(deps, { model, data }).catch((e: unknown) => e);
      expect(isMenagerieError(error) ? error.code : error, model).toBe(code);
    }
    expect(await count()).toBe(before);
  });
});

describe('evaluating a transfer model', () => {
  let ws: Awaited<ReturnType<typeof tempWorkspace>>;
  afterAll(async () => {
    await ws?.dispose();
  });

  // A tiny tfjs layers model on disk as the backbone (the packaged MobileNet takes 224×224
  // images and seconds to load): what matters is that evaluation feeds the head through it.
  it('feeds the head through its backbone, exactly as serving does', async () => {
    ws = await tempWorkspace();
    const tf = await loadTensorflow();
    const backboneDir = path.join(ws.dataDir, 'tiny-backbone');
    const backbone = tf.sequential();
    backbone.add(
      tf.layers.conv2d({
        inputShape: [4, 4, 3],
        filters: 6,
        kernelSize: 3,
        padding: 'same',
        activation: 'relu',
        kernelInitializer: tf.initializers.glorotUniform({ seed: 3 }),
      }),
    );
    await backbone.save(`file://${backboneDir}`);
    backbone.dispose();

    const images = createImageService(ws);
    for (const split of ['train', 'val'] as const)
      for (const image of COLOUR_IMAGES)
        await images.add(
          await solid(image.rgb.map((v) => (split === 'val' ? 255 - v : v)) as typeof image.rgb),
          { label: image.label, split },
        );
    const { runId } = await runTrackedTraining(jobContext(ws), {
      plugin: 'transfer',
      hp: { backbone: backboneDir, input_size: 4, input_range: '[0,1]', views: 1 },
      epochs: 2,
      batchSize: 4,
      seed: 1,
      augment: false,
      earlyStopping: false,
    });
    const registry = createModelRegistry({ db: ws.database.db });
    const version = await registerRunModel(registry, ws.tracking, ws.plugins, {
      name: 'transfer',
      runId,
    });
    const folder = path.join(ws.dataDir, 'holdout');
    await writeColourFolder(folder);

    const evaluation = await evaluateModelVersion(
      {
        database: ws.database,
        blobs: ws.blobs,
        registry,
        evaluations: createModelEvaluations({ db: ws.database.db }),
        loaders: ws,
      },
      { model: `models:/transfer/${version.version}`, data: { path: folder }, worst: 100 },
    );

    // What serving answers for the same files, through the same loader.
    const served = await loadServedModel(version, ws);
    try {
      expect(served.backbone?.name, 'the artifact is a head fed by a backbone').toBe(
        `${backboneDir}#last-4d-layer`,
      );
      // Trained on the catalogue, its labels are in name order: blue, green, red.
      expect(served.labels).toEqual(['blue', 'green', 'red']);
      const confusion = served.labels.map(() => served.labels.map(() => 0));
      const byFile = new Map<string, number[]>();
      for (const image of COLOUR_IMAGES) {
        const file = path.join(folder, image.label, image.name);
        const pixels = await decodeToPixels(fs.readFileSync(file), served.inputSpec);
        const [p] = served.forward([pixels]).probabilities;
        const truth = served.labels.indexOf(image.label);
        const predicted = p!.indexOf(Math.max(...p!));
        confusion[truth]![predicted]! += 1;
        byFile.set(file, [...p!]);
      }
      expect(evaluation.scores!.labels).toEqual(served.labels);
      expect(evaluation.scores!.confusionMatrix).toEqual(confusion);
      const right = served.labels.reduce((a, _, i) => a + confusion[i]![i]!, 0);
      expect(evaluation.worstErrors).toHaveLength(COLOUR_IMAGES.length - right);
      // The same numbers, to float32 rounding: a batch of 9 may sum in another order than 1.
      for (const w of evaluation.worstErrors)
        w.probabilities.forEach((p, i) => expect(p).toBeCloseTo(byFile.get(w.source)![i]!, 6));
    } finally {
      served.dispose();
    }
  }, 120_000);
});

async function countBlobs(blobs: { list?(): AsyncIterable<unknown> }): Promise<number> {
  let n = 0;
  for await (const blob of blobs.list!()) if (blob) n++;
  return n;
}
