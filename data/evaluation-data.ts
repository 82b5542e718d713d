import fs from 'node:fs/promises';
import path from 'node:path';
import type { BlobStore } from './blob-store.js';
import type { OpenDatabase } from './database.js';
import { loadDatasetRecords } from './dataset-records.js';
import { discoverSources, type Rejection } from './ingest/ingest-sources.js';
import type { EvaluationDatasetKind, Split } from './tables.js';

/** What to evaluate on: a folder or CSV manifest of labelled images, or a catalogue split. */
export type EvaluationSource = { path: string } | { split: Split };

/** One labelled image to score. */
export interface EvaluationItem {
  /** The file's path, or the catalogue image's source path (`image #12` when it has none). */
  source: string;
  label: string;
  /** The image's bytes (throws when they cannot be read). */
  read(): Promise<Buffer>;
  /** For catalogue images: the row and where its bytes are, so nothing is stored twice. */
  image?: { id: number; uri: string; sha256: string };
}

/** The images an evaluation will look at, and what discovery already had to leave out. */
export interface EvaluationData {
  kind: EvaluationDatasetKind;
  /** The folder's or manifest's absolute path, or the split's name. */
  source: string;
  items: EvaluationItem[];
  /** Files outside the expected layout or unusable manifest rows, with their reason. */
  rejected: Rejection[];
}

/**
 * Lists an evaluation's images the way ingest lists them: a folder (`<label>/*` or
 * `<split>/<label>/*`, every split's files included) or a CSV manifest (`path,label`), or
 * every image of one split of the catalogue. Nothing is decoded here. Throws
 * INGEST_SOURCE_NOT_FOUND for a missing path, DATASET_EMPTY for a split without images.
 *
 * ```ts
 * const data = await listEvaluationData({ database, blobs }, { path: 'holdout/' });
 * data.items.length; // every file under a label folder
 * ```
 */
export async function listEvaluationData(
  deps: { database: OpenDatabase; blobs: BlobStore },
  source: EvaluationSource,
): Promise<EvaluationData> {
  if ('split' in source) {
    const { db } = deps.database;
    const { labels, records } = await loadDatasetRecords(db, { split: source.split });
    const sources = new Map(
      (
        await db
          .selectFrom('images')
          .select(['id', 'source_path'])
          .where('split', '=', source.split)
          .execute()
      ).map((r) => [r.id, r.source_path]),
    );
    return {
      kind: 'split',
      source: source.split,
      rejected: [],
      items: records.map((r) => ({
        source: sources.get(r.id) ?? `image #${r.id}`,
        label: labels[r.labelIndex]!,
        read: () => deps.blobs.get(r.uri),
        image: { id: r.id, uri: r.uri, sha256: r.sha256 },
      })),
    };
  }
  const root = path.resolve(source.path);
  const discovered = await discoverSources(root);
  return {
    kind: discovered.layout === 'manifest' ? 'manifest' : 'folder',
    source: root,
    rejected: discovered.rejected,
    items: discovered.sources.map((s) => ({
      source: s.path,
      label: s.label,
      read: () => fs.readFile(s.path),
    })),
  };
}
