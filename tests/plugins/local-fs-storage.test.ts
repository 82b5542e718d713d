import fs from 'node:fs';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { localFsStorage } from '../../plugins/storage/local-fs.js';
import { tempDir } from '../helpers/fixtures.js';

describe('menagerie:local-fs storage', () => {
  const cleanups: (() => void)[] = [];
  afterEach(() => cleanups.splice(0).forEach((c) => c()));
  const store = () => {
    const { dir, remove } = tempDir();
    cleanups.push(remove);
    return { dir, store: localFsStorage().createStore({ dataDir: dir }) };
  };

  it('stores bytes once under their sha256 and reads them back', async () => {
    const { dir, store: s } = store();
    const uri = await s.put(Buffer.from('hello'), { ext: 'txt' });
    expect(uri).toBe(
      'blob:2c/f2/2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824.txt',
    );
    expect(await s.put(Buffer.from('hello'), { ext: 'txt' })).toBe(uri);
    expect((await s.get(uri)).toString()).toBe('hello');
    expect(await s.stat(uri)).toMatchObject({ bytes: 5 });
    const listed = [];
    for await (const b of s.list!()) listed.push(b.uri);
    expect(listed).toEqual([uri]);
    await s.delete(uri);
    expect(await s.stat(uri)).toBeNull();
    await expect(s.get(uri)).rejects.toMatchObject({ code: 'BLOB_NOT_FOUND' });
    expect(fs.readdirSync(path.join(dir, 'blobs'))).toEqual(['2c']);
  });

  it.each([
    'blob:../../etc/passwd',
    'blob:/etc/passwd',
    'file:///etc/passwd',
    'blob:2c/f2/short.txt',
  ])('never lets %s reach the filesystem', async (uri) => {
    await expect(store().store.get(uri)).rejects.toMatchObject({ code: 'BLOB_URI_UNSUPPORTED' });
  });
});
