import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makeImage } from '../helpers/fixtures.js';
import { ADD_IMAGE, startTestServer, TOKENS, type TestServer } from '../helpers/server.js';

let t: TestServer;
let imageId: number;
beforeAll(async () => {
  t = await startTestServer({ computeEmbeddings: false });
  imageId = (await t.server.services.images.add(await makeImage(1), { label: 'cat' })).image.id;
  await t.server.services.tracking.createExperiment('faces');
});
afterAll(() => t.dispose());

const codeOf = (res: { errors?: { extensions?: { code?: string } }[] }) =>
  res.errors?.[0]?.extensions?.code;

describe('page sizes outside 1–1000 are refused with the valid range', () => {
  it.each([0, -1, 1001])('images(first: %i)', async (first) => {
    const res = await t.gql(`{ images(first: ${first}) { totalCount } }`);
    expect(codeOf(res)).toBe('BAD_USER_INPUT');
    expect(res.errors?.[0]?.message).toMatch(/first should be 1 to 1000, got -?\d+/);
  });

  it.each([
    '{ labels { images(first: 0) { totalCount } } }',
    '{ runs(first: 0) { totalCount } }',
    '{ runs(first: 1001) { totalCount } }',
    '{ experiments { runs(first: 0) { totalCount } } }',
  ])('%s', async (query) => {
    const res = await t.gql(query);
    expect(codeOf(res)).toBe('BAD_USER_INPUT');
    expect(res.errors?.[0]?.message).toMatch(/1 to 1000/);
  });

  it('thumbnailUrl(size:) outside 1–512 is BAD_USER_INPUT', async () => {
    const res = await t.gql(`{ image(id: "${imageId}") { thumbnailUrl(size: 0) } }`);
    expect(codeOf(res)).toBe('BAD_USER_INPUT');
    expect(res.errors?.[0]?.message).toMatch(/1 to 512/);
  });
});

describe('a photo with EXIF rotation', () => {
  it('reports its upright width and height, as its thumbnail shows it', async () => {
    // Stored 80 wide and 40 high; orientation 6 says: display it turned a quarter, 40 × 80.
    const rotated = await sharp({
      create: { width: 80, height: 40, channels: 3, background: '#c84' },
    })
      .jpeg()
      .withMetadata({ orientation: 6 })
      .toBuffer();
    const res = await t.upload<{
      addImage: { image: { id: string; width: number; height: number } };
    }>(
      ADD_IMAGE,
      { file: null, label: 'dog' },
      [{ path: 'variables.file', file: { bytes: rotated } }],
      { token: TOKENS.write },
    );
    expect(res.errors).toBeUndefined();
    const image = res.data!.addImage.image;
    expect({ width: image.width, height: image.height }).toEqual({ width: 40, height: 80 });
    const thumb = await t.get(`/images/${image.id}/thumb?size=512`);
    const meta = await sharp(Buffer.from(await thumb.arrayBuffer())).metadata();
    expect({ width: meta.width, height: meta.height }).toEqual({ width: 40, height: 80 });
  });
});

describe('error messages never echo unbounded input', () => {
  const huge = 'x'.repeat(100_000);

  it('a 100,000-character label comes back truncated', async () => {
    const res = await t.gql(
      'mutation($id: ID!, $label: String!) { relabel(id: $id, label: $label) { id } }',
      { id: String(imageId), label: huge },
      { token: TOKENS.write },
    );
    expect(codeOf(res)).toBe('LABEL_INVALID');
    const message = res.errors![0]!.message;
    expect(message.length).toBeLessThan(400);
    expect(message).toMatch(/100,?000 characters/);
  });

  it.each([
    [
      'a variable of the wrong type',
      'query($n: Int!) { images(first: $n) { totalCount } }',
      { n: huge },
    ],
    ['an unknown field', `{ labels { ${huge} } }`, {}],
    ['a bad id', `{ image(id: "${huge}") { id } }`, {}],
  ])('%s: the message is bounded', async (_name, query, variables) => {
    const res = await t.gql(query, variables);
    expect(res.errors?.[0]?.extensions?.code).toBeDefined();
    expect(JSON.stringify(res.errors).length).toBeLessThan(2000);
  });
});
