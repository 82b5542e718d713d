import http from 'node:http';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makeImage } from '../helpers/fixtures.js';
import { startTestServer, type TestServer } from '../helpers/server.js';

let t: TestServer;
let png: Buffer;
let id: number;
let sha256: string;

beforeAll(async () => {
  t = await startTestServer();
  png = await makeImage(7, { width: 300, height: 200, format: 'png' });
  const { image } = await t.server.services.images.add(png, { label: 'cat' });
  id = image.id;
  sha256 = image.sha256;
});
afterAll(() => t.dispose());

/** A raw request, so paths like `/images/../etc/passwd` reach the server unnormalised. */
function rawGet(path: string): Promise<number> {
  const { hostname, port } = new URL(t.origin);
  return new Promise((resolve, reject) => {
    http
      .get({ hostname, port, path }, (res) => {
        res.resume();
        resolve(res.statusCode ?? 0);
      })
      .on('error', reject);
  });
}

describe('GET /images/:id', () => {
  it('serves the original bytes with their type, a sha256 ETag and immutable caching', async () => {
    const res = await t.get(`/images/${id}`);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toBe('image/png');
    expect(res.headers.get('etag')).toBe(`"${sha256}"`);
    expect(res.headers.get('cache-control')).toContain('immutable');
    expect(res.headers.get('x-content-type-options')).toBe('nosniff');
    expect(Buffer.from(await res.arrayBuffer()).equals(png)).toBe(true);
  });

  it('answers 304 to a matching If-None-Match', async () => {
    const res = await t.get(`/images/${id}`, { 'if-none-match': `"${sha256}"` });
    expect(res.status).toBe(304);
    expect((await res.arrayBuffer()).byteLength).toBe(0);
    const other = await t.get(`/images/${id}`, { 'if-none-match': '"something-else"' });
    expect(other.status).toBe(200);
  });

  it('refuses ids that are not positive integers, and 404s unknown ones', async () => {
    for (const bad of [
      '..%2F..%2Fetc%2Fpasswd',
      '-1',
      '1e99',
      '0',
      '1.5',
      '%00',
      'abc',
      '99999999999999999999',
    ]) {
      const res = await t.get(`/images/${bad}`);
      expect(res.status, bad).toBe(400);
      const body = (await res.json()) as { error: { code: string } };
      expect(body.error.code).toBe('BAD_REQUEST');
    }
    expect(await rawGet('/images/../etc/passwd')).toBe(404);
    expect(await rawGet('/images/..%2f..%2fetc%2fpasswd/thumb')).toBe(400);
    const missing = await t.get('/images/424242');
    expect(missing.status).toBe(404);
    expect(((await missing.json()) as { error: { code: string } }).error.code).toBe(
      'IMAGE_NOT_FOUND',
    );
  });
});

describe('GET /images/:id/thumb', () => {
  it('makes a WebP at an allowed size, caches it on disk, and honours If-None-Match', async () => {
    const res = await t.get(`/images/${id}/thumb?size=100`);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toBe('image/webp');
    expect(res.headers.get('etag')).toBe(`"${sha256}-128"`);
    const meta = await sharp(Buffer.from(await res.arrayBuffer())).metadata();
    expect(meta).toMatchObject({ format: 'webp', width: 128, height: 85 });

    const fs = await import('node:fs');
    const path = await import('node:path');
    const cached = path.join(
      t.workspace.dataDir,
      'thumbs',
      sha256.slice(0, 2),
      `${sha256}-128.webp`,
    );
    expect(fs.existsSync(cached)).toBe(true);

    const again = await t.get(`/images/${id}/thumb?size=128`, {
      'if-none-match': `"${sha256}-128"`,
    });
    expect(again.status).toBe(304);
  });

  it('rounds sizes up to the allow-list and never enlarges', async () => {
    const large = await t.get(`/images/${id}/thumb?size=300`);
    expect(large.headers.get('etag')).toBe(`"${sha256}-512"`);
    // 300×200 stays 300×200 at "512": thumbnails never upscale.
    expect((await sharp(Buffer.from(await large.arrayBuffer())).metadata()).width).toBe(300);
    const small = await t.get(`/images/${id}/thumb?size=1`);
    expect(small.headers.get('etag')).toBe(`"${sha256}-64"`);
  });

  it.each(['-5', '0', 'abc', '../../x', '1.5', '513', '100000', ''])(
    'size=%s is refused BAD_REQUEST (400) with the valid range',
    async (size) => {
      const res = await t.get(`/images/${id}/thumb?size=${size}`);
      expect(res.status).toBe(400);
      expect(res.headers.get('etag') ?? '').not.toContain(sha256);
      const body = (await res.json()) as { error: { code: string; message: string } };
      expect(body.error.code).toBe('BAD_REQUEST');
      expect(body.error.message).toMatch(/1 to 512/);
    },
  );
});
