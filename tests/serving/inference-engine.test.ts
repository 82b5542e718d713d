import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openDatabase, type OpenDatabase } from '../../data/database.js';
import { isMenagerieError, type ErrorCode } from '../../core/errors.js';
import { decodeToPixels, pixelsToTensor } from '../../data/preprocess.js';
import { loadTensorflow } from '../../tf/tensorflow.js';
import { createModelRegistry, type ModelRegistry } from '../../registry/model-registry.js';
import {
  createInferenceEngine,
  type EngineModel,
  type InferenceEngine,
  type InferenceEngineOptions,
  type Prediction,
} from '../../serving/inference-engine.js';
import { followChampion } from '../../serving/registry-champion.js';
import type { VersionRef } from '../../serving/served-model.js';
import { loadModelArtifact } from '../../training/model-artifact.js';
import { forEachDatabase } from '../helpers/backends.js';
import { tempDir } from '../helpers/fixtures.js';
import { waitFor } from '../helpers/wait-for.js';
import {
  LOADERS,
  registerTinyVersion,
  testImages,
  TINY_LABELS,
  TINY_SPEC,
} from './serving-fixtures.js';

const tf = await loadTensorflow();
const NAME = 'faces';

forEachDatabase((backend) => {
  let database: OpenDatabase;
  let registry: ModelRegistry;
  let root: ReturnType<typeof tempDir>;
  let images: Buffer[];

  beforeAll(async () => {
    root = tempDir('menagerie-serving-');
    database = await openDatabase(
      (await backend.location({ fresh: true })) ?? path.join(root.dir, 'menagerie.db'),
    );
    registry = createModelRegistry({ db: database.db, user: 'tester' });
    for (const seed of [1, 2, 3]) await registerTinyVersion(registry, root.dir, NAME, seed);
    await registry.promoteChampion(NAME, 1);
    images = await testImages(16);
  });

  afterAll(async () => {
    await database.close();
    root.remove();
  });

  type ChampionSource = Pick<InferenceEngineOptions, 'resolveChampion' | 'loadVersion'>;

  /** The champion (the registry's unless given), with each model's passes and disposal recorded. */
  function instrumented(source: ChampionSource = followChampion(registry, LOADERS, NAME)) {
    const passes: { version: number; size: number }[] = [];
    const disposed: VersionRef[] = [];
    const loaded: VersionRef[] = [];
    const options: ChampionSource = {
      resolveChampion: source.resolveChampion,
      async loadVersion(ref) {
        const model = await source.loadVersion(ref);
        loaded.push(ref);
        const wrapped: EngineModel = {
          ...model,
          forward(pixels) {
            passes.push({ version: ref.version, size: pixels.length });
            return model.forward(pixels);
          },
          dispose() {
            disposed.push(ref);
            model.dispose();
          },
        };
        return wrapped;
      },
    };
    return { options, passes, disposed, loaded };
  }

  async function codeOf(promise: Promise<unknown>): Promise<ErrorCode | unknown> {
    const error = await promise.then(
      () => undefined,
      (e: unknown) => e,
    );
    return isMenagerieError(error) ? error.code : error;
  }

  /** An engine on the registry's champion, or on `resolveChampion`/`loadVersion` when given. */
  async function withEngine<T>(
    options: Partial<InferenceEngineOptions>,
    run: (engine: InferenceEngine, probe: ReturnType<typeof instrumented>) => Promise<T>,
  ): Promise<T> {
    const { resolveChampion, loadVersion, ...rest } = options;
    const probe = instrumented(
      resolveChampion && loadVersion ? { resolveChampion, loadVersion } : undefined,
    );
    const engine = await createInferenceEngine({ ...probe.options, ...rest });
    try {
      return await run(engine, probe);
    } finally {
      await engine.close();
      await registry.promoteChampion(NAME, 1);
    }
  }

  describe('inference engine', () => {
    it('loads and warms the champion, and predicts with its stored preprocessing', async () => {
      await withEngine({}, async (engine, probe) => {
        expect(probe.loaded).toEqual([{ name: NAME, version: 1 }]);
        expect(probe.passes).toEqual([{ version: 1, size: 1 }]); // the warm-up
        const p = await engine.predict(images[0]!);
        expect(p.modelVersion).toEqual({ name: NAME, version: 1 });
        expect(p.latencyMs).toBeGreaterThan(0);
        expect(p.probabilities.map((c) => c.label).sort()).toEqual([...TINY_LABELS].sort());
        for (let i = 1; i < p.probabilities.length; i++)
          expect(p.probabilities[i - 1]!.p).toBeGreaterThanOrEqual(p.probabilities[i]!.p);
        expect(p.label).toBe(p.probabilities[0]!.label);
        expect(p.confidence).toBe(p.probabilities[0]!.p);
        expect(p.uncertain).toBe(p.confidence < 0.5);

        // By hand: the version's artifact, decodeToPixels with its stored spec, model.predict.
        const version = await registry.getModelVersion(NAME, 1);
        expect(version.inputSpec).toEqual(TINY_SPEC);
        const { model } = await loadModelArtifact(fileURLToPath(version.source));
        const pixels = await decodeToPixels(images[0]!, version.inputSpec);
        const expected = tf.tidy(() =>
          (
            model.predict(
              pixelsToTensor(tf, [pixels], version.inputSpec),
            ) as typeof tf.Tensor.prototype
          ).dataSync(),
        );
        model.dispose();
        for (const [i, label] of version.labels.entries()) {
          const got = p.probabilities.find((c) => c.label === label)!.p;
          expect(got).toBeCloseTo(expected[i]!, 6);
        }
        // 'fill' would have fed the model other pixels: the stored 'cover' is what made them.
        const fill = await decodeToPixels(images[0]!, { ...TINY_SPEC, fit: 'fill' });
        expect(Buffer.from(fill).equals(Buffer.from(pixels))).toBe(false);
      });
    });

    it('flags low confidence as uncertain and still returns the label', async () => {
      await withEngine({ uncertaintyThreshold: 0.999 }, async (engine) => {
        const p = await engine.predict(images[1]!);
        expect(p.uncertain).toBe(true);
        expect(TINY_LABELS).toContain(p.label);
      });
    });

    it('micro-batches concurrent requests into few forward passes, with the same answers', async () => {
      const alone = await withEngine({ maxWaitMs: 0 }, (engine) =>
        Promise.all(images.map((b) => engine.predict(b))),
      );
      // maxWaitMs far beyond the test: a pass runs when maxBatch images are queued or when
      // nothing is left decoding, never because a clock ran out. 16 requests issued in one
      // tick are all decoding at once, so they make exactly two full passes.
      await withEngine({ maxBatch: 8, maxWaitMs: 600_000 }, async (engine, probe) => {
        probe.passes.length = 0;
        const together = await Promise.all(images.map((b) => engine.predict(b)));
        expect(probe.passes.length).toBeLessThanOrEqual(4);
        expect(Math.max(...probe.passes.map((p) => p.size))).toBe(8);
        expect(probe.passes).toEqual([
          { version: 1, size: 8 },
          { version: 1, size: 8 },
        ]);
        expect(probe.passes.reduce((n, p) => n + p.size, 0)).toBe(images.length);
        expect(engine.stats()).toMatchObject({
          predictions: images.length,
          largestBatch: 8,
          forwardPasses: 2,
        });
        together.forEach((p, i) => {
          expect(p.label).toBe(alone[i]!.label);
          expect(p.confidence).toBeCloseTo(alone[i]!.confidence, 5);
        });
        const batch = await engine.predictBatch(images.slice(0, 5));
        expect(batch.map((p) => p.label)).toEqual(together.slice(0, 5).map((p) => p.label));
      });
    });

    it('predict and embed share one forward pass and give an L2-normalised embedding', async () => {
      // Issued in one tick, both are decoding before either is queued; the pass waits for
      // the second (maxWaitMs never runs out within the test).
      await withEngine({ maxWaitMs: 600_000 }, async (engine, probe) => {
        probe.passes.length = 0;
        const [p, e] = await Promise.all([
          engine.predict(images[2]!, { embedding: true }),
          engine.embed(images[2]!),
        ]);
        expect(probe.passes).toEqual([{ version: 1, size: 2 }]);
        expect(e.modelVersion).toEqual({ name: NAME, version: 1 });
        expect(e.embedding.length).toBe(24);
        expect(Math.hypot(...e.embedding)).toBeCloseTo(1, 5);
        expect([...p.embedding!]).toEqual([...e.embedding]);
      });
    });

    it('follows a promotion under load: no failed request, answers move to the new version', async () => {
      await withEngine({ maxBatch: 16, maxWaitMs: 2 }, async (engine, probe) => {
        const answers: { worker: number; version: number }[] = [];
        const failures: unknown[] = [];
        let stop = false;
        const workers = Array.from({ length: 8 }, async (_, worker) => {
          for (let i = 0; !stop; i++) {
            try {
              const p = await engine.predict(images[(worker + i) % images.length]!);
              answers.push({ worker, version: p.modelVersion.version });
            } catch (error) {
              failures.push(error);
            }
          }
        });
        /** A worker's answers from index `from` on, as versions, e.g. '1222'. */
        const since = (from: number, worker: number) =>
          answers
            .slice(from)
            .filter((a) => a.worker === worker)
            .map((a) => a.version)
            .join('');
        let swappedAt: number;
        try {
          // Counted, not timed: 40 answers before the promotion; after the swap, 40 more and
          // one from version 2 for every worker.
          await waitFor(() => failures.length > 0 || answers.length >= 40, '40 answers');
          await registry.promoteChampion(NAME, 2);
          const result = await engine.refresh();
          expect(result).toEqual({ changed: true, serving: { name: NAME, version: 2 } });
          swappedAt = answers.length;
          await waitFor(
            () =>
              failures.length > 0 ||
              (answers.length >= swappedAt + 40 &&
                Array.from({ length: 8 }, (_, w) => since(swappedAt, w)).every((v) =>
                  v.includes('2'),
                )),
            '40 answers after the swap, one from version 2 per worker',
          );
        } finally {
          stop = true;
          await Promise.all(workers);
        }

        expect(failures).toEqual([]);
        expect(swappedAt).toBeGreaterThan(20);
        expect(answers.length - swappedAt).toBeGreaterThan(20);
        // No request can reach version 2 and answer within the swap's own tick.
        const before = answers.slice(0, swappedAt).map((a) => a.version);
        expect(new Set(before)).toEqual(new Set([1]));
        // Each worker had at most its one in-flight request on version 1 at the swap; once it
        // drained, every answer is from version 2. (Where that last answer lands among the
        // others' is up to the decoder threads, so it is checked per worker.)
        for (let w = 0; w < 8; w++) expect(since(swappedAt, w), `worker ${w}`).toMatch(/^1?2+$/);
        expect(answers.slice(swappedAt).filter((a) => a.version === 1).length).toBeLessThanOrEqual(
          8,
        );
        expect(probe.disposed).toEqual([{ name: NAME, version: 1 }]);
        expect(engine.status()).toMatchObject({ serving: { version: 2 }, retiring: [] });
      });
    });

    it('disposes the old model only after its last in-flight request', async () => {
      // A 36-megapixel PNG takes a while to decode, and holds the small image queued behind
      // it (maxWaitMs) on version 1 too. Neither can answer before the swap whatever the
      // timing: both take their lease on version 1 when called, and this refresh needs no
      // I/O (the champion is a variable, version 2 is loaded beforehand), so it swaps before
      // any decode can complete.
      const side = 6000;
      const slow = await sharp(crypto.randomBytes(side * side * 3), {
        raw: { width: side, height: side, channels: 3 },
      })
        .png({ compressionLevel: 0 })
        .toBuffer();
      const fromRegistry = followChampion(registry, LOADERS, NAME);
      const v2 = await fromRegistry.loadVersion({ name: NAME, version: 2 });
      let champion: VersionRef = { name: NAME, version: 1 };
      const source: ChampionSource = {
        resolveChampion: async () => champion,
        loadVersion: async (ref) => (ref.version === 2 ? v2 : fromRegistry.loadVersion(ref)),
      };
      try {
        await withEngine({ ...source, maxWaitMs: 5000 }, async (engine, probe) => {
          const answered: string[] = [];
          const slowAnswer = engine.predict(slow).finally(() => answered.push('slow'));
          const queued = engine.predict(images[3]!).finally(() => answered.push('queued'));
          champion = { name: NAME, version: 2 };
          await engine.refresh();
          expect(answered).toEqual([]);
          expect(engine.status().serving).toEqual({ name: NAME, version: 2 });
          expect(engine.status().retiring).toEqual([{ name: NAME, version: 1 }]);
          expect(probe.disposed).toEqual([]);
          expect((await engine.predict(images[4]!)).modelVersion.version).toBe(2);
          const [a, b] = await Promise.all([slowAnswer, queued]);
          expect([a.modelVersion.version, b.modelVersion.version]).toEqual([1, 1]);
          expect(probe.disposed).toEqual([{ name: NAME, version: 1 }]);
          expect(engine.status().retiring).toEqual([]);
        });
      } finally {
        v2.dispose(); // idempotent: the engine has disposed it already unless the test failed early
      }
    });

    it('keeps serving the old model when the new champion fails to load, and says why', async () => {
      const broken = tempDir('menagerie-broken-');
      try {
        const v3 = await registry.getModelVersion(NAME, 3);
        const dir = fileURLToPath(v3.source);
        const modelJson = path.join(dir, 'model.json');
        const original = fs.readFileSync(modelJson);
        await withEngine({}, async (engine) => {
          fs.writeFileSync(modelJson, '{ not json');
          try {
            await registry.promoteChampion(NAME, 3);
            expect(await codeOf(engine.refresh())).toBe('MODEL_ARTIFACT_INVALID');
          } finally {
            fs.writeFileSync(modelJson, original);
          }
          const status = engine.status();
          expect(status.serving).toEqual({ name: NAME, version: 1 });
          expect(status.lastError).toMatchObject({
            code: 'MODEL_ARTIFACT_INVALID',
            version: { name: NAME, version: 3 },
          });
          expect((await engine.predict(images[0]!)).modelVersion.version).toBe(1);
          // Fixed on disk: an explicit refresh retries and succeeds.
          expect((await engine.refresh()).serving).toEqual({ name: NAME, version: 3 });
          expect(engine.status().lastError).toBeNull();
        });
      } finally {
        broken.remove();
      }
    });

    it('answers corrupt bytes with IMAGE_UNREADABLE and goes on serving', async () => {
      await withEngine({}, async (engine) => {
        const truncated = images[0]!.subarray(0, 200);
        expect(await codeOf(engine.predict(Buffer.from('not an image at all')))).toBe(
          'IMAGE_UNREADABLE',
        );
        expect(await codeOf(engine.predict(truncated))).toBe('IMAGE_UNREADABLE');
        expect(await codeOf(engine.predict(new Uint8Array(0)))).toBe('IMAGE_EMPTY');
        const error = await engine.predictBatch([images[0]!, truncated]).catch((e: unknown) => e);
        expect(error).toMatchObject({ code: 'IMAGE_UNREADABLE' });
        expect(String((error as Error).message)).toMatch(/^image 1 /);
        expect((await engine.predict(images[0]!)).modelVersion.version).toBe(1);
      });
    });

    it('says MODEL_NOT_SERVING when there is no champion', async () => {
      const engine = await createInferenceEngine(
        followChampion(registry, LOADERS, 'no-such-model'),
      );
      try {
        expect(engine.status().serving).toBeNull();
        const error = await engine.predict(images[0]!).catch((e: unknown) => e);
        expect(error).toMatchObject({ code: 'MODEL_NOT_SERVING' });
        expect((error as Error).message).toMatch(/no champion/);
      } finally {
        await engine.close();
      }
    });

    it('leaks no tensor over many predictions', async () => {
      const count = Number(process.env.MENAGERIE_LEAK_PREDICTIONS ?? 2000);
      await withEngine({ maxBatch: 32, maxWaitMs: 1 }, async (engine) => {
        await Promise.all(images.map((b) => engine.predict(b, { embedding: true })));
        const before = tf.memory().numTensors;
        const started = performance.now();
        const latencies: number[] = [];
        for (let done = 0; done < count; done += 50) {
          const wave = Array.from({ length: Math.min(50, count - done) }, (_, i) =>
            engine.predict(images[(done + i) % images.length]!, { embedding: i % 2 === 0 }),
          );
          const results: Prediction[] = await Promise.all(wave);
          for (const r of results) latencies.push(r.latencyMs);
        }
        const after = tf.memory().numTensors;
        expect(after).toBe(before);
        const seconds = (performance.now() - started) / 1000;
        latencies.sort((a, b) => a - b);
        console.log(
          `${count} predictions: numTensors ${before} → ${after}, ${(count / seconds).toFixed(0)}/s, ` +
            `latency p50 ${latencies[Math.floor(count / 2)]!.toFixed(2)} ms under waves of 50`,
        );
      });
      // Single requests, one at a time: the latency a lone client sees.
      await withEngine({}, async (engine) => {
        const lone: number[] = [];
        for (let i = 0; i < 200; i++) lone.push((await engine.predict(images[i % 16]!)).latencyMs);
        lone.sort((a, b) => a - b);
        console.log(
          `lone predict latency p50 ${lone[100]!.toFixed(2)} ms, p99 ${lone[198]!.toFixed(2)} ms`,
        );
      });
    });
  });
});
