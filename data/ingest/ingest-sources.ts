import fs from 'node:fs/promises';
import path from 'node:path';
import { MenagerieError, isMenagerieError, type ErrorCode } from '../../core/errors.js';
import { normaliseLabel } from '../label-name.js';
import type { Split } from '../tables.js';
import { parseCsv } from './csv.js';

/** One file to ingest; `split` null means "assign by --val-fraction". */
export interface IngestSource {
  path: string;
  label: string;
  split: Split | null;
}

export type RejectReason =
  | 'unknown-folder'
  | 'manifest-row'
  | 'invalid-label'
  | 'not-found'
  | 'empty'
  | 'unreadable'
  | 'unsupported-format'
  | 'too-large';

const IMAGE_REASONS: Partial<Record<ErrorCode, RejectReason>> = {
  IMAGE_EMPTY: 'empty',
  IMAGE_UNREADABLE: 'unreadable',
  IMAGE_UNSUPPORTED_FORMAT: 'unsupported-format',
  IMAGE_TOO_LARGE: 'too-large',
};

/** The reason to report for an image that failed `probeImage`/`decodeToPixels`; else undefined. */
export function imageRejectReason(error: unknown): RejectReason | undefined {
  return isMenagerieError(error) ? IMAGE_REASONS[error.code] : undefined;
}

export interface Rejection {
  path: string;
  reason: RejectReason;
  detail: string;
}

export type IngestLayout = 'split/label' | 'label' | 'manifest';

export interface DiscoveredSources {
  layout: IngestLayout;
  sources: IngestSource[];
  rejected: Rejection[];
  /** Hidden files (.DS_Store and the like), skipped without a report line each. */
  ignored: number;
}

/** Folder names read as splits, and the split each means (Kaggle sets use 'valid'). */
const SPLIT_FOLDERS: Readonly<Record<string, Split>> = {
  train: 'train',
  training: 'train',
  val: 'val',
  valid: 'val',
  validation: 'val',
  test: 'test',
  testing: 'test',
};

/**
 * Finds the files under `input` and the label and split each belongs to:
 * - `<root>/<split>/<label>/*` when a top folder is a split name (AFHQ, Kaggle animal-faces);
 * - `<root>/<label>/*` otherwise, splits assigned later by fraction;
 * - a `.csv` manifest with a header naming `path`, `label` and optionally `split` columns,
 *   paths relative to the manifest.
 * Files anywhere else are rejected as `unknown-folder`; nothing is read but directories.
 */
export async function discoverSources(
  input: string,
  labelMap: ReadonlyMap<string, string> = new Map(),
): Promise<DiscoveredSources> {
  const root = path.resolve(input);
  const stat = await fs.stat(root).catch(() => null);
  if (!stat) throw new MenagerieError('INGEST_SOURCE_NOT_FOUND', `no such file or folder: ${root}`);
  const found: DiscoveredSources = { layout: 'label', sources: [], rejected: [], ignored: 0 };
  const label = (raw: string, file: string): string | null => {
    try {
      const name = normaliseLabel(raw);
      return labelMap.get(name) ?? name;
    } catch (error) {
      if (!isMenagerieError(error)) throw error;
      found.rejected.push({ path: file, reason: 'invalid-label', detail: error.message });
      return null;
    }
  };
  if (stat.isFile()) {
    if (!root.toLowerCase().endsWith('.csv')) {
      throw new MenagerieError(
        'INGEST_SOURCE_NOT_FOUND',
        `${root} is a file; expected a folder or a .csv manifest`,
      );
    }
    found.layout = 'manifest';
    await readManifest(root, found, label);
    return found;
  }
  const top = await listDir(root);
  const splitLayout = top.some((e) => e.isDirectory() && e.name.toLowerCase() in SPLIT_FOLDERS);
  found.layout = splitLayout ? 'split/label' : 'label';
  for (const entry of top) {
    const full = path.join(root, entry.name);
    if (hidden(entry.name)) {
      found.ignored++;
    } else if (!entry.isDirectory()) {
      const expected = splitLayout ? '<split>/<label>/' : '<label>/';
      reject(found, full, 'unknown-folder', `not inside a ${expected} folder`);
    } else if (!splitLayout) {
      await collectLabel(full, label(entry.name, full), null, found);
    } else {
      const split = SPLIT_FOLDERS[entry.name.toLowerCase()];
      if (!split) {
        await rejectTree(full, found, `folder '${entry.name}' is not a split (train, val or test)`);
        continue;
      }
      for (const inner of await listDir(full)) {
        const innerPath = path.join(full, inner.name);
        if (hidden(inner.name)) found.ignored++;
        else if (inner.isDirectory())
          await collectLabel(innerPath, label(inner.name, innerPath), split, found);
        else reject(found, innerPath, 'unknown-folder', 'not inside a <split>/<label>/ folder');
      }
    }
  }
  return found;
}

async function collectLabel(
  dir: string,
  label: string | null,
  split: Split | null,
  found: DiscoveredSources,
): Promise<void> {
  if (label === null) return rejectTree(dir, found, 'the folder name is not a usable label');
  for (const entry of await listDir(dir)) {
    const full = path.join(dir, entry.name);
    if (hidden(entry.name)) found.ignored++;
    else if (entry.isDirectory())
      await rejectTree(full, found, 'folders inside a label folder are not read');
    else if (entry.isFile()) found.sources.push({ path: full, label, split });
  }
}

async function rejectTree(dir: string, found: DiscoveredSources, detail: string): Promise<void> {
  for (const entry of await listDir(dir)) {
    const full = path.join(dir, entry.name);
    if (hidden(entry.name)) found.ignored++;
    else if (entry.isDirectory()) await rejectTree(full, found, detail);
    else reject(found, full, 'unknown-folder', detail);
  }
}

async function readManifest(
  file: string,
  found: DiscoveredSources,
  label: (raw: string, file: string) => string | null,
): Promise<void> {
  let records: { line: number; fields: string[] }[];
  try {
    records = parseCsv(await fs.readFile(file, 'utf8'));
  } catch (error) {
    throw new MenagerieError('INGEST_MANIFEST_INVALID', `${file}: ${String(error)}`);
  }
  const header = records.shift()?.fields.map((h) => h.trim().toLowerCase()) ?? [];
  const col = {
    path: header.indexOf('path'),
    label: header.indexOf('label'),
    split: header.indexOf('split'),
  };
  if (col.path < 0 || col.label < 0) {
    throw new MenagerieError(
      'INGEST_MANIFEST_INVALID',
      `${file}: the header should name path and label columns (and optionally split), got '${header.join(',')}'`,
    );
  }
  const base = path.dirname(file);
  for (const { line, fields } of records) {
    const where = `${file}:${line}`;
    const rawPath = fields[col.path]?.trim() ?? '';
    const rawLabel = fields[col.label]?.trim() ?? '';
    const rawSplit = col.split >= 0 ? (fields[col.split]?.trim().toLowerCase() ?? '') : '';
    if (rawPath === '' || rawLabel === '') {
      reject(found, where, 'manifest-row', 'path and label must not be empty');
      continue;
    }
    const split = rawSplit === '' ? null : SPLIT_FOLDERS[rawSplit];
    if (split === undefined) {
      reject(found, where, 'manifest-row', `split '${rawSplit}' is not train, val or test`);
      continue;
    }
    const full = path.resolve(base, rawPath);
    const name = label(rawLabel, full);
    if (name !== null) found.sources.push({ path: full, label: name, split });
  }
}

function reject(
  found: DiscoveredSources,
  file: string,
  reason: RejectReason,
  detail: string,
): void {
  found.rejected.push({ path: file, reason, detail });
}

function hidden(name: string): boolean {
  return name.startsWith('.') || name === 'Thumbs.db' || name === 'desktop.ini';
}

async function listDir(dir: string) {
  const entries = await fs.readdir(dir, { withFileTypes: true });
  // Sorted, so discovery order (and with it ids and reports) is the same on every run.
  return entries.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
}
