import { createHash } from 'node:crypto';
import fs from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { MenagerieError } from '../core/errors.js';
import { uriScheme } from './blob-store.js';

/** One file of an artifact folder. */
export interface ArtifactFile {
  /** Relative to the folder, with `/` separators. */
  path: string;
  bytes: number;
  /** Changes whenever the content does (an S3 ETag, a local size + mtime). */
  version: string;
}

/**
 * Where folders of files that belong to runs and model versions live: checkpoints, saved
 * models, evaluation plots, tuning state. Unlike the blob store (image bytes, content
 * addressed) an artifact folder has paths and its files are rewritten (each better
 * checkpoint replaces the last). Storage plugins create them (`createArtifactStore`);
 * `file://` folders are the default.
 *
 * Code that reads a model or a plot never reads the store directly: it asks
 * `localArtifactFolder` for a local folder, which any replica can get for any URI.
 *
 * ```ts
 * const uri = artifacts.folderUri(`1/${runId}/artifacts`); // s3://bucket/prefix/artifacts/1/…
 * await artifacts.uploadFolder('/tmp/run', uri);
 * const dir = await localArtifactFolder(artifacts, `${uri}/model`); // a local copy
 * ```
 */
export interface ArtifactStore {
  /** URI schemes of the folders it holds, without the colon: `['file']`, `['s3']`. */
  readonly schemes: readonly string[];
  /** A short description for `doctor`: the folder or bucket. */
  readonly location: string;
  /** The URI of the folder at `key` (`/`-separated, relative) under the store's root. */
  folderUri(key: string): string;
  /** Every file under the folder at `uri`, recursively; empty when there is none. */
  list(uri: string): Promise<ArtifactFile[]>;
  /** One file's bytes, or null when it does not exist. */
  read(uri: string, file: string): Promise<Buffer | null>;
  /**
   * Copies every file under the local folder `dir` into the folder at `uri`, replacing
   * files of the same path; files that did not change since the last upload are skipped.
   */
  uploadFolder(dir: string, uri: string): Promise<void>;
  /**
   * A local folder holding the files of the folder at `uri`: the folder itself for
   * `file://` URIs, otherwise a read-through cache refreshed from the store whenever a file
   * changed there. Writing into it and then `uploadFolder`-ing it back is how a run's files
   * reach a remote store.
   */
  localFolder(uri: string): Promise<string>;
}

/** Resolves `file` inside `root`; RUN_ARTIFACT_INVALID when it would leave it. */
export function insideFolder(root: string, file: string): string {
  const target = path.resolve(root, file);
  if (path.isAbsolute(file) || (target !== root && !target.startsWith(root + path.sep)))
    throw new MenagerieError(
      'RUN_ARTIFACT_INVALID',
      `artifact path '${file}' should be relative and stay inside the artifact folder`,
    );
  return target;
}

/** Every file under `dir`, with `/`-separated paths relative to it. */
export async function walkFolder(
  dir: string,
): Promise<{ path: string; file: string; size: number; mtimeMs: number }[]> {
  const out: { path: string; file: string; size: number; mtimeMs: number }[] = [];
  const visit = async (folder: string): Promise<void> => {
    const entries = await fs.readdir(folder, { withFileTypes: true }).catch(() => []);
    for (const entry of entries) {
      const full = path.join(folder, entry.name);
      if (entry.isDirectory()) await visit(full);
      else if (entry.isFile() && !entry.name.endsWith('.tmp')) {
        const stat = await fs.stat(full);
        out.push({
          path: path.relative(dir, full).split(path.sep).join('/'),
          file: full,
          size: stat.size,
          mtimeMs: stat.mtimeMs,
        });
      }
    }
  };
  await visit(dir);
  return out.sort((a, b) => a.path.localeCompare(b.path));
}

/** `file://` folders under `root`: the embedded default. Reads any `file://` URI. */
export function localArtifactStore(root: string): ArtifactStore {
  const base = path.resolve(root);
  const pathOf = (uri: string): string => {
    if (uriScheme(uri) !== 'file')
      throw new MenagerieError('BLOB_URI_UNSUPPORTED', `not a file:// artifact URI: ${uri}`);
    return fileURLToPath(uri);
  };
  return {
    schemes: ['file'],
    location: base,
    folderUri: (key) => pathToFileURL(insideFolder(base, key)).href,
    async list(uri) {
      return (await walkFolder(pathOf(uri))).map((f) => ({
        path: f.path,
        bytes: f.size,
        version: `${f.size}:${f.mtimeMs}`,
      }));
    },
    async read(uri, file) {
      return fs.readFile(insideFolder(pathOf(uri), file)).catch(() => null);
    },
    async uploadFolder(dir, uri) {
      const target = pathOf(uri);
      if (path.resolve(dir) === target) return;
      await fs.mkdir(target, { recursive: true });
      await fs.cp(dir, target, { recursive: true });
    },
    async localFolder(uri) {
      return pathOf(uri);
    },
  };
}

/** What a remote store (S3) provides for `cachedArtifactStore` to build on. */
export interface RemoteArtifactBackend {
  readonly schemes: readonly string[];
  readonly location: string;
  folderUri(key: string): string;
  list(uri: string): Promise<ArtifactFile[]>;
  read(uri: string, file: string): Promise<Buffer | null>;
  /** Writes one file; returns its new version (what `list` will report for it). */
  write(uri: string, file: string, bytes: Buffer): Promise<string>;
}

interface CacheIndex {
  uri: string;
  /** Path → the version in the store and the local size and mtime when they matched. */
  files: Record<string, { version: string; size: number; mtimeMs: number }>;
}

/**
 * An artifact store over a remote backend with a read-through cache in `cacheDir`: each
 * folder URI has a local folder (named by the URI's hash) and an index of which store
 * version each local file is. `localFolder` downloads only files whose version changed;
 * `uploadFolder` sends only files changed locally since they were last in step.
 */
export function cachedArtifactStore(
  backend: RemoteArtifactBackend,
  options: { cacheDir: string },
): ArtifactStore {
  const cacheDir = path.resolve(options.cacheDir);
  const folderOf = (uri: string) =>
    path.join(cacheDir, createHash('sha256').update(uri).digest('hex').slice(0, 32));
  const indexFile = (uri: string) => `${folderOf(uri)}.json`;
  const readIndex = async (uri: string): Promise<CacheIndex> => {
    try {
      const index = JSON.parse(await fs.readFile(indexFile(uri), 'utf8')) as CacheIndex;
      if (index.uri === uri) return index;
    } catch {
      // no index yet, or a torn one: everything is downloaded again
    }
    return { uri, files: {} };
  };
  const writeIndex = async (index: CacheIndex): Promise<void> => {
    const file = indexFile(index.uri);
    const temp = `${file}.${process.pid}.tmp`;
    await fs.writeFile(temp, JSON.stringify(index));
    await fs.rename(temp, file);
  };
  const inStep = (index: CacheIndex, f: { path: string; size: number; mtimeMs: number }) => {
    const known = index.files[f.path];
    return known !== undefined && known.size === f.size && known.mtimeMs === f.mtimeMs;
  };

  return {
    schemes: backend.schemes,
    location: backend.location,
    folderUri: (key) => backend.folderUri(key),
    list: (uri) => backend.list(uri),
    read: (uri, file) => backend.read(uri, file),

    async uploadFolder(dir, uri) {
      const local = path.resolve(dir);
      const cached = local === folderOf(uri);
      const index = cached ? await readIndex(uri) : { uri, files: {} };
      for (const f of await walkFolder(local)) {
        if (cached && inStep(index, f)) continue;
        const version = await backend.write(uri, f.path, await fs.readFile(f.file));
        index.files[f.path] = { version, size: f.size, mtimeMs: f.mtimeMs };
      }
      if (cached) await writeIndex(index);
    },

    async localFolder(uri) {
      const folder = folderOf(uri);
      await fs.mkdir(folder, { recursive: true });
      const index = await readIndex(uri);
      const local = new Map((await walkFolder(folder)).map((f) => [f.path, f]));
      let changed = false;
      for (const remote of await backend.list(uri)) {
        const here = local.get(remote.path);
        // A file written here and not uploaded yet is newer than the store's: keep it.
        if (here && (index.files[remote.path]?.version === remote.version || !inStep(index, here)))
          continue;
        const bytes = await backend.read(uri, remote.path);
        if (!bytes) continue; // deleted meanwhile
        const target = insideFolder(folder, remote.path);
        await fs.mkdir(path.dirname(target), { recursive: true });
        const temp = `${target}.${process.pid}.tmp`;
        await fs.writeFile(temp, bytes);
        await fs.rename(temp, target);
        const stat = await fs.stat(target);
        index.files[remote.path] = {
          version: remote.version,
          size: stat.size,
          mtimeMs: stat.mtimeMs,
        };
        changed = true;
      }
      if (changed) await writeIndex(index);
      return folder;
    },
  };
}

/**
 * One artifact store that writes new folders to `primary` and reads any URI whose scheme
 * one of the stores holds: runs recorded before a move to S3 keep their `file://` folders.
 */
export function routeArtifactStores(
  primary: ArtifactStore,
  ...others: ArtifactStore[]
): ArtifactStore {
  const all = [primary, ...others];
  const storeFor = (uri: string): ArtifactStore => {
    const scheme = uriScheme(uri);
    const store = all.find((s) => s.schemes.includes(scheme));
    if (!store)
      throw new MenagerieError(
        'BLOB_URI_UNSUPPORTED',
        `no artifact store reads '${scheme}:' URIs (${uri}); configure the store that wrote it`,
      );
    return store;
  };
  return {
    schemes: all.flatMap((s) => s.schemes),
    location: primary.location,
    folderUri: (key) => primary.folderUri(key),
    list: (uri) => storeFor(uri).list(uri),
    read: (uri, file) => storeFor(uri).read(uri, file),
    uploadFolder: (dir, uri) => storeFor(uri).uploadFolder(dir, uri),
    localFolder: (uri) => storeFor(uri).localFolder(uri),
  };
}

/**
 * The one way to turn an artifact location into a local folder: a `file://` URI or a plain
 * path is the folder itself; any other URI (`s3://…`) is fetched through `artifacts`' read-
 * through cache. Loading a model, warm-starting a trial and serving a plot all go through it,
 * so any replica can load any model version.
 *
 * ```ts
 * const dir = await localArtifactFolder(version.source, workspace.artifacts);
 * ```
 */
export async function localArtifactFolder(
  location: string,
  artifacts?: ArtifactStore,
): Promise<string> {
  const scheme = uriScheme(location);
  if (scheme === 'file') return fileURLToPath(location);
  if (scheme === '') return path.resolve(location);
  if (!artifacts)
    throw new MenagerieError(
      'BLOB_URI_UNSUPPORTED',
      `'${location}' is in a remote artifact store, and none is configured here`,
    );
  return artifacts.localFolder(location);
}
