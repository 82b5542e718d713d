import { createHash, randomBytes } from 'node:crypto';
import fs from 'node:fs/promises';
import path from 'node:path';
import { localArtifactStore } from '../../data/artifact-store.js';
import { localPathOf, notFound } from '../../data/blob-store.js';
import { MenagerieError } from '../../core/errors.js';
import { definePlugin, type StoragePlugin } from '../../plugin-api/plugin.js';

const SCHEME = 'blob';
const KEY = /^[0-9a-f]{2}\/[0-9a-f]{2}\/[0-9a-f]{64}(\.[a-z0-9]{1,8})?(\.[0-9a-f]{12}\.tmp)?$/;

/**
 * The built-in store: content-addressed files under `<data-dir>/blobs/ab/cd/<sha256>.<ext>`,
 * named by URIs `blob:ab/cd/<sha256>.<ext>`. Writes go to a temporary name and are renamed
 * into place after fsync, so a killed process leaves no half blob under a real name.
 */
export function localFsStorage(options: { folder?: string } = {}): StoragePlugin {
  return definePlugin({
    name: 'menagerie:local-fs',
    kind: 'storage',
    version: '1.0.0',
    description: 'content-addressed files in the data directory',
    createStore({ dataDir }) {
      const root = path.resolve(dataDir, options.folder ?? 'blobs');
      const pathOf = (uri: string): string => {
        const key = uri.slice(SCHEME.length + 1);
        // Only well-formed keys reach the filesystem: no '..', no absolute paths.
        if (!uri.startsWith(`${SCHEME}:`) || !KEY.test(key)) {
          throw new MenagerieError('BLOB_URI_UNSUPPORTED', `not a local blob URI: ${uri}`);
        }
        return path.join(root, key);
      };
      return {
        schemes: [SCHEME],
        location: root,
        async put(bytes, hints = {}) {
          const sha256 = hints.sha256 ?? createHash('sha256').update(bytes).digest('hex');
          const ext = hints.ext ? `.${hints.ext.toLowerCase()}` : '';
          const uri = `${SCHEME}:${sha256.slice(0, 2)}/${sha256.slice(2, 4)}/${sha256}${ext}`;
          const file = pathOf(uri);
          if (await exists(file)) return uri;
          await fs.mkdir(path.dirname(file), { recursive: true });
          const temp = `${file}.${randomBytes(6).toString('hex')}.tmp`;
          const handle = await fs.open(temp, 'w');
          try {
            await handle.writeFile(bytes);
            await handle.sync();
          } finally {
            await handle.close();
          }
          await fs.rename(temp, file);
          return uri;
        },
        async get(uri) {
          try {
            return await fs.readFile(pathOf(uri));
          } catch (error) {
            throw error instanceof MenagerieError ? error : notFound(uri, error);
          }
        },
        async stat(uri) {
          const stat = await fs.stat(pathOf(uri)).catch(() => null);
          return stat ? { bytes: stat.size, modifiedAt: stat.mtimeMs } : null;
        },
        async delete(uri) {
          await fs.rm(pathOf(uri), { force: true });
        },
        localPath: localPathOf(pathOf),
        async *list() {
          for (const a of await readdirOrEmpty(root)) {
            for (const b of await readdirOrEmpty(path.join(root, a))) {
              for (const name of await readdirOrEmpty(path.join(root, a, b))) {
                const file = path.join(root, a, b, name);
                // Temporary files of a killed writer are listed too, so sweeps remove them.
                const stat = await fs.stat(file).catch(() => null);
                if (stat?.isFile())
                  yield { uri: `${SCHEME}:${a}/${b}/${name}`, modifiedAt: stat.mtimeMs };
              }
            }
          }
        },
      };
    },
    createArtifactStore: ({ dataDir }) => localArtifactStore(path.resolve(dataDir, 'artifacts')),
  });
}

async function exists(file: string): Promise<boolean> {
  return fs.access(file).then(
    () => true,
    () => false,
  );
}

async function readdirOrEmpty(dir: string): Promise<string[]> {
  return fs.readdir(dir).catch(() => []);
}
