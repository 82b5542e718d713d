import fs from 'node:fs';
import path from 'node:path';
import type { Kysely } from 'kysely';
import { insideFolder, localArtifactFolder, type ArtifactStore } from '../data/artifact-store.js';
import { MenagerieError } from '../core/errors.js';
import type { Database } from '../data/tables.js';
import { getRunRow, notActive } from './run-row.js';

export interface ArtifactEntry {
  /** Relative to the run's artifact folder, with `/` separators. */
  path: string;
  isDir: boolean;
  bytes: number | null;
}

/** `a/b/../c` → `a/c`; RUN_ARTIFACT_INVALID for a path that leaves the folder. */
function relativeArtifactPath(artifactPath: string): string {
  const root = path.resolve('/artifacts');
  return path.relative(root, insideFolder(root, artifactPath)).split(path.sep).join('/');
}

/** The artifact URI of a new run: the folder `<experiment id>/<run id>/artifacts` of the store. */
export function runArtifactUri(
  artifacts: ArtifactStore,
  experimentId: number,
  runId: string,
): string {
  return artifacts.folderUri(`${experimentId}/${runId}/artifacts`);
}

/**
 * The run's artifacts as a local folder: the folder itself when the store is local, else
 * its read-through cache copy (brought up to date first). A trainer writes into it and
 * then `uploadRunArtifacts` sends what changed to the store.
 */
export async function runArtifactDir(
  db: Kysely<Database>,
  artifacts: ArtifactStore,
  runId: string,
): Promise<string> {
  return localArtifactFolder((await getRunRow(db, runId)).artifact_uri, artifacts);
}

/** Sends the files written into the run's local folder to its store (nothing to do locally). */
export async function uploadRunArtifacts(
  db: Kysely<Database>,
  artifacts: ArtifactStore,
  runId: string,
): Promise<void> {
  const uri = (await getRunRow(db, runId)).artifact_uri;
  await artifacts.uploadFolder(await localArtifactFolder(uri, artifacts), uri);
}

export async function logArtifact(
  db: Kysely<Database>,
  artifacts: ArtifactStore,
  runId: string,
  localPath: string,
  artifactPath?: string,
): Promise<string> {
  const row = await getRunRow(db, runId);
  if (row.status !== 'RUNNING' || row.lifecycle !== 'active') throw notActive(row, 'artifacts');
  const source = path.resolve(localPath);
  if (!fs.existsSync(source))
    throw new MenagerieError('RUN_ARTIFACT_INVALID', `no file or folder at ${source} to log`);
  const root = await localArtifactFolder(row.artifact_uri, artifacts);
  const folder = artifactPath ? insideFolder(root, artifactPath) : root;
  const target = path.join(folder, path.basename(source));
  fs.mkdirSync(folder, { recursive: true });
  fs.cpSync(source, target, { recursive: true });
  await artifacts.uploadFolder(root, row.artifact_uri);
  return path.relative(root, target).split(path.sep).join('/');
}

/** The entries of one folder of the run's artifacts, from the store's own listing. */
export async function listArtifacts(
  db: Kysely<Database>,
  artifacts: ArtifactStore,
  runId: string,
  artifactPath?: string,
): Promise<ArtifactEntry[]> {
  const row = await getRunRow(db, runId);
  const folder = artifactPath ? relativeArtifactPath(artifactPath) : '';
  const prefix = folder ? `${folder}/` : '';
  const entries = new Map<string, ArtifactEntry>();
  for (const file of await artifacts.list(row.artifact_uri)) {
    if (!file.path.startsWith(prefix)) continue;
    const [head, ...rest] = file.path.slice(prefix.length).split('/');
    const entryPath = `${prefix}${head}`;
    entries.set(
      entryPath,
      rest.length > 0
        ? { path: entryPath, isDir: true, bytes: null }
        : { path: entryPath, isDir: false, bytes: file.bytes },
    );
  }
  return [...entries.values()].sort((a, b) => a.path.localeCompare(b.path));
}

/** One file of the run's artifacts, or null when it has none at that path. */
export async function readArtifact(
  db: Kysely<Database>,
  artifacts: ArtifactStore,
  runId: string,
  artifactPath: string,
): Promise<Buffer | null> {
  return artifacts.read(
    (await getRunRow(db, runId)).artifact_uri,
    relativeArtifactPath(artifactPath),
  );
}
