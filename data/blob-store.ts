import fs from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { MenagerieError } from '../core/errors.js';

/**
 * Where image bytes live. The database keeps only a blob's URI; a store answers for the
 * URI schemes it names. Storage plugins create stores (plugins/storage/).
 *
 * ```ts
 * const uri = await store.put(bytes, { ext: 'jpg' }); // 'blob:ab/cd/abcd….jpg'
 * const same = await store.get(uri);
 * ```
 */
export interface BlobStore {
  /** URI schemes this store reads, without the colon: `['blob']`. */
  readonly schemes: readonly string[];
  /** A short description for `doctor`, e.g. the folder or bucket. */
  readonly location: string;
  /**
   * Stores the bytes and returns their URI. Content-addressed stores return the same URI
   * for the same bytes and write nothing the second time. A URI is returned only once the
   * bytes are durable, so a row that names it never points at a half-written blob.
   */
  put(bytes: Uint8Array, hints?: { sha256?: string; ext?: string }): Promise<string>;
  /** The bytes at `uri`; throws BLOB_NOT_FOUND when there are none. */
  get(uri: string): Promise<Buffer>;
  stat(uri: string): Promise<{ bytes: number; modifiedAt: number } | null>;
  /** Removes the blob; a missing blob is not an error. */
  delete(uri: string): Promise<void>;
  /**
   * The file holding the blob's bytes, for a store that keeps them in local files, so a
   * decoder process can read them itself; undefined for other stores and URIs.
   */
  localPath?(uri: string): string | undefined;
  /** Every blob this store holds, for sweeping orphans. Stores that cannot list omit it. */
  list?(): AsyncIterable<{ uri: string; modifiedAt: number }>;
}

export function uriScheme(uri: string): string {
  const colon = uri.indexOf(':');
  return colon > 0 ? uri.slice(0, colon) : '';
}

/**
 * Reads images ingested with `--reference`: `file://` URIs naming the original file. It
 * never writes and never deletes the user's files.
 */
export function referenceBlobStore(): BlobStore {
  const pathOf = (uri: string): string => {
    if (uriScheme(uri) !== 'file') {
      throw new MenagerieError('BLOB_URI_UNSUPPORTED', `not a file:// URI: ${uri}`);
    }
    return fileURLToPath(uri);
  };
  return {
    schemes: ['file'],
    location: 'files in place (file://)',
    async put() {
      throw new MenagerieError('BLOB_URI_UNSUPPORTED', 'the reference store does not store bytes');
    },
    async get(uri) {
      try {
        return await fs.readFile(pathOf(uri));
      } catch (error) {
        throw notFound(uri, error);
      }
    },
    async stat(uri) {
      const stat = await fs.stat(pathOf(uri)).catch(() => null);
      return stat ? { bytes: stat.size, modifiedAt: stat.mtimeMs } : null;
    },
    async delete() {},
    localPath: localPathOf(pathOf),
  };
}

/**
 * A store's `localPath` from the function its get() reads through: undefined where that
 * refuses the URI, and get() then names the fault.
 */
export function localPathOf(pathOf: (uri: string) => string): (uri: string) => string | undefined {
  return (uri) => {
    try {
      return pathOf(uri);
    } catch {
      return undefined;
    }
  };
}

/**
 * One store that writes to `primary` and reads any URI whose scheme one of `stores`
 * answers, so rows written by a copy ingest and a reference ingest live side by side.
 */
export function routeBlobStores(primary: BlobStore, ...others: BlobStore[]): BlobStore {
  const all = [primary, ...others];
  const findStore = (uri: string) => all.find((s) => s.schemes.includes(uriScheme(uri)));
  const storeFor = (uri: string): BlobStore => {
    const store = findStore(uri);
    if (!store) {
      const scheme = uriScheme(uri);
      throw new MenagerieError(
        'BLOB_URI_UNSUPPORTED',
        `no blob store reads '${scheme}:' URIs (${uri})`,
      );
    }
    return store;
  };
  return {
    schemes: all.flatMap((s) => s.schemes),
    location: primary.location,
    put: (bytes, hints) => primary.put(bytes, hints),
    get: (uri) => storeFor(uri).get(uri),
    stat: (uri) => storeFor(uri).stat(uri),
    delete: (uri) => storeFor(uri).delete(uri),
    localPath: (uri) => findStore(uri)?.localPath?.(uri),
    ...(primary.list ? { list: () => primary.list!() } : {}),
  };
}

export function notFound(uri: string, cause: unknown): MenagerieError {
  const code = (cause as NodeJS.ErrnoException | undefined)?.code;
  return code === 'ENOENT'
    ? new MenagerieError('BLOB_NOT_FOUND', `no blob at ${uri}`, { cause })
    : new MenagerieError('BLOB_NOT_FOUND', `cannot read ${uri}: ${String(cause)}`, { cause });
}
