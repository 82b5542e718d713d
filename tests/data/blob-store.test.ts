import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import { referenceBlobStore, routeBlobStores } from '../../data/blob-store.js';
import { localFsStorage } from '../../plugins/storage/local-fs.js';
import { tempDir, writeFile } from '../helpers/fixtures.js';

describe('localPath through the stores a workspace routes', () => {
  const cleanups: (() => void)[] = [];
  afterEach(() => cleanups.splice(0).forEach((c) => c()));

  it('names the file of a copied blob and of a referenced one, and nothing it cannot read', async () => {
    const { dir, remove } = tempDir();
    cleanups.push(remove);
    const local = localFsStorage().createStore({ dataDir: dir });
    const blobs = routeBlobStores(local, referenceBlobStore());
    const copied = await blobs.put(Buffer.from('copied'), { ext: 'bin' });
    expect(blobs.localPath!(copied)).toBe(path.join(dir, 'blobs', copied.slice('blob:'.length)));
    const file = writeFile(path.join(dir, 'in place.jpg'), 'in place');
    expect(blobs.localPath!(pathToFileURL(file).href)).toBe(file);
    // A scheme no store reads, and URIs their stores refuse: get() names those faults.
    expect(blobs.localPath!('s3://bucket/key.jpg')).toBeUndefined();
    expect(blobs.localPath!('blob:../../etc/passwd')).toBeUndefined();
    expect(blobs.localPath!('file://remote-host/share/x.jpg')).toBeUndefined();
    await expect(blobs.get('blob:../../etc/passwd')).rejects.toMatchObject({
      code: 'BLOB_URI_UNSUPPORTED',
    });
  });
});
