import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import fs from 'node:fs/promises';
import { pathToFileURL } from 'node:url';
import type { BlobStore } from '../blob-store.js';
import type { OpenDatabase } from '../database.js';
import { namedBlobUris } from '../blob-references.js';
import { countImages, insertImages, type LabelSplitCount } from '../image-catalog.js';
import { IMAGE_FORMATS, probeImage } from '../image-probe.js';
import { sharedTensorflowJpegDecoder } from '../tensorflow-jpeg-decoder.js';
import type { NewImage, Split } from '../tables.js';
import {
  discoverSources,
  imageRejectReason,
  type IngestLayout,
  type IngestSource,
  type Rejection,
} from './ingest-sources.js';

/** What proves JPEGs whole during an ingest (see IngestOptions.jpegDecoder). */
export type JpegDecoderChoice = 'sharp' | 'tensorflow' | 'auto';

/**
 * Files from which `auto` picks TensorFlow: starting its decoder processes (about a second,
 * once per process) is paid back by saving 1–2 ms of sharp's per-file cost after several
 * hundred files.
 */
export const AUTO_TENSORFLOW_FILES = 1000;

export interface IngestOptions {
  /** A folder (`<split>/<label>/*` or `<label>/*`) or a `.csv` manifest. */
  source: string;
  /** Record each file where it is (`file://` URI) instead of copying it into the blob store. */
  reference?: boolean;
  /** Share of images put in `val` where the source names no split (default 0.2). */
  valFraction?: number;
  /** Renames labels after normalisation: `new Map([['wild', 'wildlife']])`. */
  labelMap?: ReadonlyMap<string, string>;
  maxPixels?: number;
  /**
   * What proves JPEGs whole: sharp (the default) or TensorFlow's libjpeg in child processes
   * (`sharedTensorflowJpegDecoder`: a third of sharp's CPU per file, after about a second
   * of starting, once per process). `auto`, the CLI's default: TensorFlow from
   * AUTO_TENSORFLOW_FILES files up, where its start pays for itself, sharp below.
   */
  jpegDecoder?: JpegDecoderChoice;
  /**
   * Files decoded at once (default: with sharp, libuv's thread pool size, 4 unless
   * UV_THREADPOOL_SIZE says; with TensorFlow, TENSORFLOW_CONCURRENCY).
   */
  concurrency?: number;
  /** Called after each file with running totals. */
  onProgress?: (progress: IngestProgress) => void;
  /** Aborting stops taking new files; what is done so far is committed and reported. */
  signal?: AbortSignal;
}

export interface IngestProgress {
  done: number;
  total: number;
  added: number;
  rejected: number;
}

export interface IngestReport {
  layout: IngestLayout;
  /** Files considered, rejected ones included. */
  total: number;
  added: number;
  /** Already in the database from this same path: a re-run. */
  unchanged: number;
  /** Same bytes as an image already stored under another path; not stored again. */
  duplicates: { path: string; sameAs: string }[];
  rejected: Rejection[];
  ignored: number;
  /** Unreferenced blobs left by an earlier killed run and removed by this one. */
  sweptBlobs: number;
  interrupted: boolean;
  /** What proved the JPEGs whole (`auto` resolved). */
  jpegDecoder: 'sharp' | 'tensorflow';
  seconds: number;
  /** Images per label × split in the whole database after the run. */
  counts: LabelSplitCount[];
}

/** Rows per transaction: as the Python anchor commits; a killed run redoes at most this many. */
const BATCH_SIZE = 500;
/**
 * Files read and hashed ahead of decoding, and looked up in one query. About two chunks'
 * bytes are held at a time (the one handed out and the next), so this bounds memory too.
 */
const READ_CHUNK = 16;
/** sharp decodes on libuv's thread pool: one file per thread keeps every thread busy. */
const SHARP_CONCURRENCY = Math.max(
  1,
  Number.parseInt(process.env.UV_THREADPOOL_SIZE ?? '', 10) || 4,
);
/**
 * Files in flight with TensorFlow's decoder processes: enough that each always has the next
 * JPEG queued while this thread reads, hashes and inserts. With 2 processes on 2 cores, 8,
 * 16 and 32 in flight measured alike, within the noise (1,350–1,900 images/s).
 */
const TENSORFLOW_CONCURRENCY = 16;

type PendingRow = Omit<NewImage, 'label_id'> & { label: string };

/**
 * Adds the images under `options.source` to the database and blob store. Every file is
 * decoded to prove it is an image; bad files are reported with their reason and the run
 * goes on. Rows are committed in batches after their blobs are durable, so a run killed
 * at any point leaves only whole rows, and the next run adds what is missing and sweeps
 * blobs the killed run left unreferenced. Re-running adds nothing.
 *
 * ```ts
 * const report = await ingestImages({ database, blobs }, { source: 'afhq', reference: true });
 * console.log(report.added, report.rejected.length);
 * ```
 */
export async function ingestImages(
  deps: { database: OpenDatabase; blobs: BlobStore },
  options: IngestOptions,
): Promise<IngestReport> {
  const started = Date.now();
  const { db } = deps.database;
  const discovered = await discoverSources(options.source, options.labelMap);
  const report: IngestReport = {
    layout: discovered.layout,
    total: discovered.sources.length + discovered.rejected.length,
    added: 0,
    unchanged: 0,
    duplicates: [],
    rejected: [...discovered.rejected],
    ignored: discovered.ignored,
    sweptBlobs: 0,
    interrupted: false,
    jpegDecoder: 'sharp',
    seconds: 0,
    counts: [],
  };
  const many = discovered.sources.length >= AUTO_TENSORFLOW_FILES;
  const choice = options.jpegDecoder ?? 'sharp';
  const decoder = choice === 'auto' ? (many ? 'tensorflow' : 'sharp') : choice;
  const decodeJpeg =
    decoder === 'tensorflow' ? (await sharedTensorflowJpegDecoder()).decode : undefined;
  report.jpegDecoder = decoder;
  const inFlight = decodeJpeg ? TENSORFLOW_CONCURRENCY : SHARP_CONCURRENCY;
  const valFraction = options.valFraction ?? 0.2;
  const knownInRun = new Map<string, string>();
  let batch: PendingRow[] = [];
  let done = report.rejected.length;
  const pathBySha = async (sha256: string) =>
    (
      await db
        .selectFrom('images')
        .select('source_path')
        .where('sha256', '=', sha256)
        .executeTakeFirst()
    )?.source_path;

  const flush = async () => {
    const rows = batch;
    batch = [];
    const { inserted, skippedSha256 } = await insertImages(db, rows);
    report.added += inserted;
    for (const sha of skippedSha256) {
      // Another writer stored the same bytes between our check and our commit.
      const row = rows.find((r) => r.sha256 === sha)!;
      report.duplicates.push({ path: row.source_path ?? '', sameAs: (await pathBySha(sha)) ?? '' });
    }
  };

  const ingestOne = async (file: ReadFile) => {
    const { source } = file;
    if ('error' in file) {
      report.rejected.push({ path: source.path, reason: 'not-found', detail: String(file.error) });
      return;
    }
    const { bytes, sha256 } = file;
    const seen = knownInRun.get(sha256) ?? file.stored;
    if (seen !== undefined) {
      if (seen === source.path) report.unchanged++;
      else report.duplicates.push({ path: source.path, sameAs: seen ?? '(uploaded)' });
      return;
    }
    knownInRun.set(sha256, source.path);
    let info;
    try {
      info = await probeImage(bytes, { maxPixels: options.maxPixels, decodeJpeg });
    } catch (error) {
      const reason = imageRejectReason(error);
      if (!reason) throw error;
      knownInRun.delete(sha256);
      report.rejected.push({
        path: source.path,
        reason,
        detail: error instanceof Error ? error.message : '',
      });
      return;
    }
    const uri = options.reference
      ? pathToFileURL(source.path).href
      : await deps.blobs.put(bytes, { sha256, ext: IMAGE_FORMATS[info.format] });
    batch.push({
      sha256,
      uri,
      label: source.label,
      split: source.split ?? splitFor(sha256, valFraction),
      width: info.width,
      height: info.height,
      format: info.format,
      bytes: bytes.length,
      source_path: source.path,
      added_at: Date.now(),
    });
    if (batch.length >= BATCH_SIZE) await flush();
  };

  // TensorFlow decodes in batch ingests (the CLI's), where this event loop serves nothing
  // else: the files are read synchronously there, one call a file instead of an open, stat,
  // read and close through the thread pool. `bench ingest`: 0.40–0.48 against 0.50–0.54 ms
  // of the process's CPU per file.
  const files = readAhead(db, discovered.sources, { blocking: decodeJpeg !== undefined });
  const worker = async () => {
    // Async generators queue concurrent next() calls, so workers share one safely.
    for (let next = await files.next(); !next.done; next = await files.next()) {
      if (options.signal?.aborted) {
        report.interrupted = true;
        return;
      }
      await ingestOne(next.value);
      done++;
      options.onProgress?.({
        done,
        total: report.total,
        added: report.added + batch.length,
        rejected: report.rejected.length,
      });
    }
  };
  try {
    await Promise.all(Array.from({ length: Math.max(1, options.concurrency ?? inFlight) }, worker));
  } finally {
    await files.return(undefined);
    await flush();
  }
  if (!options.reference) report.sweptBlobs = await sweepOrphanBlobs(deps, started);
  report.counts = await countImages(db);
  report.seconds = (Date.now() - started) / 1000;
  return report;
}

/**
 * The split of an image the source gave none: decided by its content hash, so it never
 * changes between runs, renames or machines. The hash is hashed again because data sets
 * are often picked by hash order (afhq-mini took the lowest sha256s of each class), and
 * a raw prefix would then put whole classes on one side.
 */
export function splitFor(sha256: string, valFraction: number): Split {
  const mixed = createHash('sha256').update(`menagerie-split:${sha256}`).digest();
  return mixed.readUInt32BE(0) / 2 ** 32 < valFraction ? 'val' : 'train';
}

/** A source read and hashed, with the path already stored under its sha256, if any. */
type ReadFile =
  | { source: IngestSource; error: unknown }
  | {
      source: IngestSource;
      bytes: Buffer;
      sha256: string;
      /** Undefined: new bytes; null: stored by an upload (no source path). */
      stored: string | null | undefined;
    };

/**
 * Reads and hashes the sources a chunk at a time, one query per chunk finding the hashes
 * already stored: a query per file cost the main thread more than hashing did on SQLite,
 * and is a round trip per file on PostgreSQL. The next chunk is read while this one is
 * decoded.
 */
async function* readAhead(
  db: OpenDatabase['db'],
  sources: readonly IngestSource[],
  options: { blocking: boolean },
): AsyncGenerator<ReadFile, void, undefined> {
  const readChunk = async (start: number): Promise<ReadFile[]> => {
    const chunk = sources.slice(start, start + READ_CHUNK);
    const read = await Promise.all(
      chunk.map(async (source): Promise<ReadFile> => {
        try {
          const bytes = options.blocking
            ? readFileSync(source.path)
            : await fs.readFile(source.path);
          const sha256 = createHash('sha256').update(bytes).digest('hex');
          return { source, bytes, sha256, stored: undefined };
        } catch (error) {
          return { source, error };
        }
      }),
    );
    const hashes = [...new Set(read.flatMap((f) => ('error' in f ? [] : [f.sha256])))];
    const rows =
      hashes.length === 0
        ? []
        : await db
            .selectFrom('images')
            .select(['sha256', 'source_path'])
            .where('sha256', 'in', hashes)
            .execute();
    const stored = new Map(rows.map((r) => [r.sha256, r.source_path]));
    return read.map((f) => ('error' in f ? f : { ...f, stored: stored.get(f.sha256) }));
  };
  let next = sources.length > 0 ? readChunk(0) : null;
  for (let start = 0; next; start += READ_CHUNK) {
    const current = await next;
    next = start + READ_CHUNK < sources.length ? readChunk(start + READ_CHUNK) : null;
    // A failed read-ahead is awaited with the chunk it belongs to, not reported unhandled.
    next?.catch(() => undefined);
    yield* current;
  }
}

/**
 * Deletes blobs no row names that were written before `before` (a killed run's leftovers,
 * temporary files included). Newer ones may belong to a concurrent ingest not yet committed.
 */
export async function sweepOrphanBlobs(
  deps: { database: OpenDatabase; blobs: BlobStore },
  before: number,
): Promise<number> {
  if (!deps.blobs.list) return 0;
  // Predictions and evaluations keep bytes too: those blobs are named as well.
  const referenced = await namedBlobUris(deps.database.db);
  let swept = 0;
  for await (const blob of deps.blobs.list()) {
    if (blob.modifiedAt < before && !referenced.has(blob.uri)) {
      await deps.blobs.delete(blob.uri);
      swept++;
    }
  }
  return swept;
}
