import { createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { localArtifactFolder, type ArtifactStore } from '../../data/artifact-store.js';
import type { BlobStore } from '../../data/blob-store.js';
import { localFsStorage } from '../../plugins/storage/local-fs.js';
import { parseS3Url, s3Storage } from '../../plugins/storage/s3.js';
import type { StoragePlugin } from '../../plugin-api/plugin.js';
import { forEachStore, SERVICE_START_TIMEOUT } from '../helpers/backends.js';
import { tempDir, writeFile } from '../helpers/fixtures.js';

const MIB = 1024 * 1024;

// One contract, every storage plugin: the built-in local folder and S3 (Ceph RGW here).
forEachStore((backend) => {
  const cleanups: (() => void)[] = [];
  afterEach(() => cleanups.splice(0).forEach((c) => c()));
  let url: string | undefined;
  beforeAll(async () => {
    url = await backend.url();
  }, SERVICE_START_TIMEOUT);
  // Multipart from 5 MiB (S3's smallest part), so a test object of 11 MiB takes 3 parts.
  const plugin = (): StoragePlugin =>
    backend.name === 'local'
      ? localFsStorage()
      : s3Storage({ multipartThreshold: 5 * MIB, partSize: 5 * MIB });
  const open = (): { dir: string; blobs: BlobStore; artifacts: ArtifactStore } => {
    const { dir, remove } = tempDir();
    cleanups.push(remove);
    // A prefix per store, so tests never see each other's objects.
    const scoped = url && url.replace(/^(s3:\/\/[^/?]+\/[^?]*)/, `$1/${path.basename(dir)}`);
    const context = { dataDir: dir, ...(scoped && { url: scoped }) };
    const p = plugin();
    return { dir, blobs: p.createStore(context), artifacts: p.createArtifactStore!(context) };
  };

  describe('blobs', () => {
    it('stores bytes once under their sha256 and reads them back', async () => {
      const { blobs } = open();
      const uri = await blobs.put(Buffer.from('hello'), { ext: 'txt' });
      expect(uri).toBe(
        'blob:2c/f2/2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824.txt',
      );
      expect(await blobs.put(Buffer.from('hello'), { ext: 'txt' })).toBe(uri);
      expect((await blobs.get(uri)).toString()).toBe('hello');
      expect(await blobs.stat(uri)).toMatchObject({ bytes: 5 });
      const listed = [];
      for await (const b of blobs.list!()) listed.push(b.uri);
      expect(listed).toEqual([uri]);
      await blobs.delete(uri);
      expect(await blobs.stat(uri)).toBeNull();
      await expect(blobs.get(uri)).rejects.toMatchObject({ code: 'BLOB_NOT_FOUND' });
      await blobs.delete(uri); // a missing blob is not an error
    });

    it('names the local file of a blob only where one holds it', async () => {
      const { blobs } = open();
      const uri = await blobs.put(Buffer.from('on disk?'), { ext: 'bin' });
      const file = blobs.localPath?.(uri);
      if (backend.name === 'local') {
        expect(fs.readFileSync(file!).toString()).toBe('on disk?');
        expect(blobs.localPath!('blob:../../etc/passwd')).toBeUndefined();
      } else {
        expect(file).toBeUndefined();
      }
    });

    it('writes a blob once: a second put of the same bytes keeps the first object', async () => {
      const { blobs } = open();
      const bytes = Buffer.from('create once');
      const uri = await blobs.put(bytes, { ext: 'bin' });
      const first = await blobs.stat(uri);
      await new Promise((r) => setTimeout(r, 1100)); // past the stores' 1 s mtime resolution
      await Promise.all([blobs.put(bytes, { ext: 'bin' }), blobs.put(bytes, { ext: 'bin' })]);
      expect(await blobs.stat(uri)).toEqual(first);
    });

    it('stores a large object (in parts on S3) and reads back the same sha256', async () => {
      const { blobs } = open();
      const big = Buffer.alloc(11 * MIB);
      for (let i = 0; i < big.length; i += 4096) big.writeUInt32LE((i * 2654435761) >>> 0, i);
      const sha256 = createHash('sha256').update(big).digest('hex');
      const uri = await blobs.put(big, { ext: 'bin' });
      expect(uri).toContain(sha256);
      const back = await blobs.get(uri);
      expect(createHash('sha256').update(back).digest('hex')).toBe(sha256);
      expect(await blobs.put(big, { ext: 'bin' })).toBe(uri);
      await blobs.delete(uri);
    });

    it.each([
      'blob:../../etc/passwd',
      'blob:/etc/passwd',
      'file:///etc/passwd',
      'blob:2c/f2/short.txt',
    ])('never lets %s reach the storage', async (uri) => {
      await expect(open().blobs.get(uri)).rejects.toMatchObject({
        code: 'BLOB_URI_UNSUPPORTED',
      });
    });
  });

  describe('artifacts', () => {
    it('uploads a folder, lists and reads it, and any replica gets a local copy', async () => {
      const writer = open();
      const uri = writer.artifacts.folderUri('1/run/artifacts');
      expect(uri.startsWith(backend.name === 'local' ? 'file://' : 's3://')).toBe(true);
      const dir = await localArtifactFolder(uri, writer.artifacts);
      writeFile(path.join(dir, 'model', 'model.json'), '{"a":1}');
      writeFile(path.join(dir, 'model', 'weights.bin'), 'wwww');
      await writer.artifacts.uploadFolder(dir, uri);
      expect((await writer.artifacts.list(uri)).map((f) => [f.path, f.bytes]).sort()).toEqual([
        ['model/model.json', 7],
        ['model/weights.bin', 4],
      ]);
      expect((await writer.artifacts.read(uri, 'model/weights.bin'))!.toString()).toBe('wwww');
      expect(await writer.artifacts.read(uri, 'model/missing.bin')).toBeNull();
      await expect(writer.artifacts.read(uri, '../../etc/passwd')).rejects.toMatchObject({
        code: 'RUN_ARTIFACT_INVALID',
      });

      // A second replica (its own data folder and cache) reads the same URI.
      const reader = open();
      if (backend.name === 's3') {
        const readerUri = uri; // the URI names the bucket, not the replica
        const copy = await localArtifactFolder(readerUri, reader.artifacts);
        expect(copy.startsWith(reader.dir)).toBe(true);
        expect(fs.readFileSync(path.join(copy, 'model', 'model.json'), 'utf8')).toBe('{"a":1}');
        // A rewritten file reaches the reader's cache at its next look; an unchanged one is kept.
        writeFile(path.join(dir, 'model', 'model.json'), '{"a":2}');
        await writer.artifacts.uploadFolder(dir, uri);
        const before = fs.statSync(path.join(copy, 'model', 'weights.bin')).mtimeMs;
        await localArtifactFolder(readerUri, reader.artifacts);
        expect(fs.readFileSync(path.join(copy, 'model', 'model.json'), 'utf8')).toBe('{"a":2}');
        expect(fs.statSync(path.join(copy, 'model', 'weights.bin')).mtimeMs).toBe(before);
      } else {
        expect(await localArtifactFolder(uri, reader.artifacts)).toBe(dir);
      }
    });
  });
});

describe('the S3 store URL', () => {
  it('names the bucket, the prefix, the endpoint and the region', () => {
    expect(
      parseS3Url('s3://menagerie/team/a?endpoint=http://127.0.0.1:9000&region=eu-west-1'),
    ).toEqual({
      bucket: 'menagerie',
      prefix: 'team/a',
      endpoint: 'http://127.0.0.1:9000',
      region: 'eu-west-1',
    });
    expect(parseS3Url('s3://menagerie')).toEqual({ bucket: 'menagerie', prefix: '' });
    expect(() => parseS3Url('http://menagerie/x')).toThrow(/s3:\/\/bucket\/prefix/);
  });
});
