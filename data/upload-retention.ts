import type { BlobStore } from './blob-store.js';
import type { OpenDatabase } from './database.js';

const DAY_MS = 24 * 60 * 60 * 1000;

/**
 * How long, and how much of, the uploads behind predictions are kept so that feedback can
 * add them to the data set. An upload feedback added is an image: the data set's, never
 * expired by this.
 */
export interface UploadRetention {
  /** Uploads last predicted longer ago than this are expired (default 7 days). */
  maxAgeMs: number;
  /** The newest uploads are kept up to this many bytes in all (default 1 GiB). */
  maxBytes: number;
}

export const DEFAULT_UPLOAD_RETENTION: UploadRetention = {
  maxAgeMs: 7 * DAY_MS,
  maxBytes: 1024 ** 3,
};

export interface ExpiredUploads {
  /** Distinct uploads expired (their rows keep the prediction, without the bytes). */
  expired: number;
  /** Bytes of the blobs deleted. */
  bytes: number;
}

/**
 * Expires kept uploads past the retention limit: those last predicted before
 * `now - maxAgeMs`, then the oldest beyond `maxBytes` (newest kept first). Their rows'
 * `blob_uri` becomes null and the blob is deleted unless an image names it. `menagerie
 * gc` runs it; so does a server whose kept uploads pass the size limit.
 *
 * ```ts
 * const { expired, bytes } = await expireUploads(workspace, { maxAgeMs: 86_400_000, maxBytes: 1e9 });
 * ```
 */
export async function expireUploads(
  deps: { database: OpenDatabase; blobs: BlobStore },
  retention: UploadRetention,
  now = Date.now(),
): Promise<ExpiredUploads> {
  const { db } = deps.database;
  const kept = await db
    .selectFrom('predictions')
    .select((eb) => [
      'blob_uri',
      eb.fn.max('created_at').as('last'),
      eb.fn.max('upload_bytes').as('bytes'),
    ])
    .where('blob_uri', 'is not', null)
    .where((eb) => eb('blob_uri', 'not in', eb.selectFrom('images').select('uri')))
    .groupBy('blob_uri')
    .orderBy('last', 'desc')
    .execute();
  let total = 0;
  const result: ExpiredUploads = { expired: 0, bytes: 0 };
  for (const row of kept) {
    const bytes = Number(row.bytes ?? 0);
    total += bytes;
    if (Number(row.last) >= now - retention.maxAgeMs && total <= retention.maxBytes) continue;
    const uri = row.blob_uri!;
    await db
      .updateTable('predictions')
      .set({ blob_uri: null })
      .where('blob_uri', '=', uri)
      .execute();
    // Feedback may have made it an image since the listing: then the bytes stay.
    const image = await db
      .selectFrom('images')
      .select('id')
      .where('uri', '=', uri)
      .executeTakeFirst();
    if (!image) {
      await deps.blobs.delete(uri);
      result.bytes += bytes;
    }
    result.expired++;
  }
  return result;
}

/**
 * Where a server keeps prediction uploads: in the blob store, under the retention limit,
 * or nowhere (a read-only server, whose predictions can get no feedback).
 *
 * ```ts
 * const uploads = createUploadKeeper({ database, blobs, retention: DEFAULT_UPLOAD_RETENTION });
 * const uri = await uploads.keep(bytes, { sha256, ext: 'jpg' }); // null: not kept
 * // … write the prediction row with blob_uri: uri, upload_bytes: bytes.length
 * await uploads.recorded(bytes.length);
 * ```
 */
export interface UploadKeeper {
  /** Stores an upload for feedback and returns its URI; null when uploads are not kept. */
  keep(bytes: Uint8Array, hints: { sha256: string; ext?: string }): Promise<string | null>;
  /** After the rows naming kept uploads are written: expires the oldest past the size limit. */
  recorded(bytes: number): Promise<void>;
}

export function createUploadKeeper(
  deps: { database: OpenDatabase; blobs: BlobStore },
  options: { retention?: Partial<UploadRetention>; keep?: boolean } = {},
): UploadKeeper {
  const retention = { ...DEFAULT_UPLOAD_RETENTION, ...options.retention };
  // Bytes kept, as last counted plus what was kept since: counting is a scan, so it runs
  // when the estimate passes the limit, not per upload.
  let estimate: number | undefined;
  let pruning: Promise<void> | undefined;
  const prune = () =>
    (pruning ??= expireUploads(deps, retention)
      .then(async () => {
        estimate = await keptBytes(deps.database);
      })
      .finally(() => {
        pruning = undefined;
      }));
  return {
    async keep(bytes, hints) {
      if (options.keep === false) return null;
      return deps.blobs.put(bytes, hints);
    },
    async recorded(bytes) {
      if (options.keep === false || bytes === 0) return;
      estimate ??= (await keptBytes(deps.database)) - bytes;
      estimate += bytes;
      if (estimate > retention.maxBytes) await prune();
    },
  };
}

async function keptBytes(database: OpenDatabase): Promise<number> {
  const { db } = database;
  const rows = await db
    .selectFrom('predictions')
    .select((eb) => ['blob_uri', eb.fn.max('upload_bytes').as('bytes')])
    .where('blob_uri', 'is not', null)
    .where((eb) => eb('blob_uri', 'not in', eb.selectFrom('images').select('uri')))
    .groupBy('blob_uri')
    .execute();
  return rows.reduce((sum, row) => sum + Number(row.bytes ?? 0), 0);
}
