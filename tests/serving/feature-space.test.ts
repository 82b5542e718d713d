import fs from 'node:fs';
import path from 'node:path';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import type { Workspace } from '../../cli/workspace.js';
import { ingestImages } from '../../data/ingest/ingest.js';
import {
  featureSpaceQueries,
  getFeatureSpace,
  runFeatureSpaceJob,
  startFeatureSpaceJob,
  type FeatureSpaceDeps,
} from '../../serving/feature-space.js';
import { findSimilar } from '../../serving/similar-images.js';
import { vectorIndex } from '../../serving/vector-index.js';
import { AFHQ_MINI } from '../helpers/fixtures.js';
import { ADD_IMAGE, startTestServer, TOKENS, type TestServer } from '../helpers/server.js';

const BACKBONE = 'menagerie:mobilenet_v2_140';

// Real photos (afhq-mini: 40 cats, 24 dogs, 21 wild) through the packaged MobileNetV2:
// neighbours in its feature space are animals of the same kind, whatever the classifier.
describe('similar images in a pretrained feature space', () => {
  let server: TestServer;
  let ws: Workspace;
  let deps: FeatureSpaceDeps;
  let labels: Map<number, string>;

  beforeAll(async () => {
    // A server that answers similar images from the feature space; its catalogue starts
    // empty, so it starts no job: the tests fill the space in process.
    server = await startTestServer({ similarBackbone: BACKBONE, featureRefreshMs: 200 });
    ws = server.workspace;
    expect(await getFeatureSpace(ws.database.db, BACKBONE)).toBeNull();
    await ingestImages(ws, { source: AFHQ_MINI, reference: true });
    deps = {
      database: ws.database,
      blobs: ws.blobs,
      backbones: ws.backbones,
      cacheDir: path.join(ws.dataDir, 'cache'),
    };
    const rows = await ws.database.db
      .selectFrom('images')
      .innerJoin('labels', 'labels.id', 'images.label_id')
      .select(['images.id', 'labels.name as label'])
      .execute();
    labels = new Map(rows.map((r) => [r.id, r.label]));
  }, 120_000);
  afterAll(async () => {
    await server?.dispose();
  });

  it('says why it cannot answer before the space is filled, and falls back to random', async () => {
    const features = featureSpaceQueries(deps);
    expect(await features.ready()).toEqual({
      reason: `the ${BACKBONE} feature space was never computed`,
    });
    const [first] = labels.keys();
    const result = await findSimilar(
      { database: ws.database, features },
      { imageId: first!, k: 3 },
    );
    expect(result.method).toBe('random');
    expect(result.reason).toContain('feature space was never computed');
  });

  it('fills the space with every image, and its neighbours share their label', async () => {
    const progress: number[] = [];
    const space = await runFeatureSpaceJob(deps, {
      onProgress: (p) => progress.push(p.done),
    });
    expect(space).toMatchObject({
      backbone: BACKBONE,
      status: 'READY',
      done: 85,
      total: 85,
      dimension: 128,
      error: null,
    });
    expect(progress.at(-1)).toBe(85);
    expect(await vectorIndex(ws.database).count(space.space)).toBe(85);

    const features = featureSpaceQueries(deps);
    let agree = 0;
    for (const [imageId, label] of labels) {
      const result = await findSimilar(
        { database: ws.database, features },
        { imageId, k: 1, sameLabel: false },
      );
      expect(result).toMatchObject({ method: 'embedding', space: 'features' });
      expect(result.images[0]!.imageId).not.toBe(imageId);
      if (result.images[0]!.label === label) agree++;
    }
    // The nearest other photo is of the same kind for most photos (by chance: about 35%; measured 74 of 85).
    expect(agree / labels.size).toBeGreaterThan(0.8);
  }, 300_000);

  it('projects new bytes as it projected the catalogue: a photo finds itself', async () => {
    const file = path.join(AFHQ_MINI, 'cat', fs.readdirSync(path.join(AFHQ_MINI, 'cat'))[0]!);
    const result = await findSimilar(
      { database: ws.database, features: featureSpaceQueries(deps) },
      { bytes: fs.readFileSync(file), label: 'cat', k: 3 },
    );
    expect(result.space).toBe('features');
    expect(result.images.map((i) => i.label)).toEqual(['cat', 'cat', 'cat']);
    const self = await ws.database.db
      .selectFrom('images')
      .select('id')
      .where('uri', 'like', `%${path.basename(file)}`)
      .executeTakeFirstOrThrow();
    expect(result.images[0]).toMatchObject({ imageId: self.id });
    expect(result.images[0]!.distance).toBeLessThan(1e-3);
  }, 120_000);

  it('starts no job while the space holds every image, and a re-run adds nothing', async () => {
    expect(await startFeatureSpaceJob({ database: ws.database, dataDir: ws.dataDir })).toBeNull();
    const before = await getFeatureSpace(ws.database.db, BACKBONE);
    const again = await runFeatureSpaceJob(deps);
    expect(again).toMatchObject({ space: before!.space, status: 'READY', done: 85 });
    expect(await vectorIndex(ws.database).count(again.space)).toBe(85);
  }, 120_000);

  it('answers GraphQL from the feature space, and from the version space when asked', async () => {
    const cat = [...labels].find(([, label]) => label === 'cat')![0];
    const query = `query Similar($id: ID!, $space: SimilarSpace!) {
      image(id: $id) { similar(k: 5, sameLabel: false, space: $space) {
        method space reason images { distance image { label { name } } } } } }`;
    type Answer = {
      image: {
        similar: {
          method: string;
          space: string | null;
          reason: string | null;
          images: { distance: number | null; image: { label: { name: string } } }[];
        };
      };
    };
    const features = await server.gql<Answer>(query, { id: String(cat), space: 'FEATURES' });
    expect(features.errors, JSON.stringify(features.errors)).toBeUndefined();
    expect(features.data!.image.similar).toMatchObject({
      method: 'EMBEDDING',
      space: 'FEATURES',
      reason: null,
    });
    expect(features.data!.image.similar.images).toHaveLength(5);
    // No model is served here: the version space cannot answer, and says why.
    const version = await server.gql<Answer>(query, { id: String(cat), space: 'MODEL_VERSION' });
    expect(version.errors).toBeUndefined();
    expect(version.data!.image.similar).toMatchObject({ method: 'RANDOM', space: null });
    expect(version.data!.image.similar.reason).toBeTruthy();
  });

  it('takes in an image added later once additions settle, in a child process', async () => {
    const space = (await getFeatureSpace(ws.database.db, BACKBONE))!;
    // A new photo: one of the sample's dogs, mirrored (other bytes, another sha256).
    const dogs = path.join(AFHQ_MINI, 'dog');
    const bytes = await sharp(path.join(dogs, fs.readdirSync(dogs).sort()[0]!))
      .flop()
      .jpeg()
      .toBuffer();
    const added = await server.upload<{ addImage: { image: { id: string } } }>(
      ADD_IMAGE,
      { file: null, label: 'dog' },
      [{ path: 'variables.file', file: { bytes } }],
      { token: TOKENS.write },
    );
    expect(added.errors).toBeUndefined();
    const id = Number(added.data!.addImage.image.id);
    await vi.waitFor(
      async () => {
        const now = await getFeatureSpace(ws.database.db, BACKBONE);
        expect(now).toMatchObject({ space: space.space, status: 'READY', done: 86, total: 86 });
      },
      { timeout: 120_000, interval: 250 },
    );
    expect(await vectorIndex(ws.database).count(space.space)).toBe(86);
    const result = await findSimilar(
      { database: ws.database, features: featureSpaceQueries(deps) },
      { imageId: id, k: 1 },
    );
    // Its nearest dog is the photo it was mirrored from.
    expect(result).toMatchObject({ method: 'embedding', space: 'features' });
    expect(result.images[0]!.distance).toBeLessThan(0.2);
  }, 150_000);
});
