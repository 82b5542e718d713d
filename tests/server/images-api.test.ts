import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createClient } from 'graphql-ws';
import WebSocket from 'ws';
import { makeImage } from '../helpers/fixtures.js';
import { ADD_IMAGE, startTestServer, TOKENS, type TestServer } from '../helpers/server.js';

interface ImagesPage {
  images: {
    totalCount: number;
    pageInfo: { hasNextPage: boolean; endCursor: string | null };
    edges: { cursor: string; node: { id: string; label: { name: string }; split: string } }[];
  };
}

const PAGE = `query Page($first: Int!, $after: String, $filter: ImageFilter) {
  images(first: $first, after: $after, filter: $filter) {
    totalCount
    pageInfo { hasNextPage endCursor }
    edges { cursor node { id label { name } split } }
  }
}`;

let t: TestServer;

beforeAll(async () => {
  t = await startTestServer();
  const labels = ['cat', 'dog', 'wild'];
  for (let i = 0; i < 12; i++) {
    await t.server.services.images.add(await makeImage(i, { size: 32 }), {
      label: labels[i % 3]!,
      split: i < 9 ? 'train' : 'val',
    });
  }
});
afterAll(() => t.dispose());

describe('images over HTTP', () => {
  it('pages through images with cursors, filters by label and split, and counts them', async () => {
    const seen: string[] = [];
    let after: string | null = null;
    let pages = 0;
    for (;;) {
      const res: Awaited<ReturnType<typeof t.gql<ImagesPage>>> = await t.gql<ImagesPage>(PAGE, {
        first: 5,
        after,
      });
      expect(res.errors).toBeUndefined();
      const { images } = res.data!;
      expect(images.totalCount).toBe(12);
      seen.push(...images.edges.map((e) => e.node.id));
      pages++;
      if (!images.pageInfo.hasNextPage) break;
      expect(images.pageInfo.endCursor).toBe(images.edges.at(-1)!.cursor);
      after = images.pageInfo.endCursor;
    }
    expect(pages).toBe(3);
    expect(new Set(seen).size).toBe(12);

    const cats = await t.gql<ImagesPage>(PAGE, {
      first: 50,
      filter: { label: 'Cat', split: 'TRAIN' },
    });
    expect(cats.data!.images.totalCount).toBe(3);
    expect(cats.data!.images.edges.every((e) => e.node.label.name === 'cat')).toBe(true);
    expect(cats.data!.images.edges.every((e) => e.node.split === 'TRAIN')).toBe(true);
  });

  it('treats SQL-looking filter strings as plain label names', async () => {
    const res = await t.gql<ImagesPage>(PAGE, {
      first: 5,
      filter: { label: "cat' OR 1=1; DROP TABLE images; --" },
    });
    expect(res.errors).toBeUndefined();
    expect(res.data!.images.totalCount).toBe(0);
    const all = await t.gql<ImagesPage>(PAGE, { first: 1 });
    expect(all.data!.images.totalCount).toBe(12);
  });

  it('answers a cursor it did not issue with CURSOR_INVALID', async () => {
    const res = await t.gql(PAGE, { first: 5, after: 'bm90LWEtY3Vyc29y' });
    expect(res.errors?.[0]?.extensions?.code).toBe('CURSOR_INVALID');
  });

  it('lists labels with counts per split, image(id) and imageStats', async () => {
    const res = await t.gql<{
      labels: { name: string; counts: { train: number; val: number; total: number } }[];
      imageStats: {
        totalCount: number;
        labelCount: number;
        splits: { train: number; val: number };
      };
      image: { id: string; label: { name: string }; addedAt: string } | null;
      missing: unknown;
    }>(`{
      labels { name counts { train val test total } }
      imageStats { totalCount labelCount totalBytes splits { train val test total } formats { format count } }
      image(id: "1") { id label { name } addedAt }
      missing: image(id: "999999")
        { id }
    }`);
    expect(res.errors).toBeUndefined();
    expect(res.data!.labels.map((l) => l.name)).toEqual(['cat', 'dog', 'wild']);
    expect(res.data!.labels[0]!.counts).toEqual({ train: 3, val: 1, test: 0, total: 4 });
    expect(res.data!.imageStats).toMatchObject({
      totalCount: 12,
      labelCount: 3,
      splits: { train: 9, val: 3 },
    });
    expect(res.data!.image).toMatchObject({ id: '1', label: { name: 'cat' } });
    expect(res.data!.image!.addedAt).toMatch(/^\d{13}$/);
    expect(res.data!.missing).toBeNull();
  });

  it('adds an uploaded image, reports a re-upload as a duplicate, relabels and deletes it', async () => {
    const bytes = await makeImage(100, { size: 48, format: 'png' });
    // The client's MIME type and name lie; the server goes by the bytes.
    const file = { bytes, type: 'text/plain', filename: 'notes.txt' };
    const added = await t.upload<{
      addImage: { duplicate: boolean; image: Record<string, unknown> };
    }>(
      ADD_IMAGE,
      { file: null, label: 'Red Panda', split: 'TEST' },
      [{ path: 'variables.file', file }],
      { token: TOKENS.write },
    );
    expect(added.errors).toBeUndefined();
    expect(added.data!.addImage.duplicate).toBe(false);
    const image = added.data!.addImage.image;
    expect(image).toMatchObject({
      label: { name: 'red-panda' },
      split: 'TEST',
      width: 48,
      height: 48,
      format: 'png',
    });

    const again = await t.upload<{ addImage: { duplicate: boolean; image: { id: string } } }>(
      ADD_IMAGE,
      { file: null, label: 'cat' },
      [{ path: 'variables.file', file }],
      { token: TOKENS.write },
    );
    expect(again.data!.addImage).toMatchObject({ duplicate: true, image: { id: image['id'] } });

    const relabelled = await t.gql<{ relabel: { label: { name: string } } }>(
      `mutation($id: ID!) { relabel(id: $id, label: "wild") { label { name } } }`,
      { id: image['id'] },
      { token: TOKENS.write },
    );
    expect(relabelled.data!.relabel.label.name).toBe('wild');

    const original = await t.get(String(image['url']));
    expect(original.status).toBe(200);
    expect(Buffer.from(await original.arrayBuffer()).equals(bytes)).toBe(true);

    const deleted = await t.gql<{ deleteImage: string }>(
      `mutation($id: ID!) { deleteImage(id: $id) }`,
      { id: image['id'] },
      { token: TOKENS.admin },
    );
    expect(deleted.data!.deleteImage).toBe(image['id']);
    expect((await t.get(String(image['url']))).status).toBe(404);
    const gone = await t.gql(
      `mutation($id: ID!) { deleteImage(id: $id) }`,
      { id: image['id'] },
      { token: TOKENS.admin },
    );
    expect(gone.errors?.[0]?.extensions?.code).toBe('IMAGE_NOT_FOUND');
  });

  it('streams imageAdded to a graphql-ws subscriber on the same path', async () => {
    const client = createClient({
      url: t.server.url.replace(/^http/, 'ws'),
      webSocketImpl: WebSocket,
      lazy: false,
    });
    try {
      const events = client.iterate<{ imageAdded: { id: string; label: { name: string } } }>({
        query: 'subscription { imageAdded { id label { name } } }',
      });
      const first = events.next();
      // The subscription is registered once the server acknowledges; poll until it lands.
      let result:
        IteratorResult<{ data?: { imageAdded: { label: { name: string } } } | null }> | undefined;
      for (let seed = 200; !result && seed < 220; seed++) {
        await t.upload(
          ADD_IMAGE,
          { file: null, label: 'otter' },
          [{ path: 'variables.file', file: { bytes: await makeImage(seed, { size: 24 }) } }],
          { token: TOKENS.write },
        );
        result = await Promise.race([
          first,
          new Promise<undefined>((r) => setTimeout(() => r(undefined), 200)),
        ]);
      }
      expect(result?.value?.data?.imageAdded.label.name).toBe('otter');
      await events.return?.();
    } finally {
      await client.dispose();
    }
  });
});
