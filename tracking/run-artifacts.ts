import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import type { Kysely } from 'kysely';
import { MenagerieError } from '../core/errors.js';
import type { Database } from '../data/tables.js';
import { getRunRow, notActive } from './run-row.js';

export interface ArtifactEntry {
  /** Relative to the run's artifact folder, with `/` separators. */
  path: string;
  isDir: boolean;
  bytes: number | null;
}

/** The `file://` URL of a new run's artifact folder: `<root>/<experiment id>/<run id>/artifacts`. */
export function runArtifactUri(artifactRoot: string, experimentId: number, runId: string): string {
  return pathToFileURL(path.join(artifactRoot, String(experimentId), runId, 'artifacts')).href;
}

export async function runArtifactDir(db: Kysely<Database>, runId: string): Promise<string> {
  return fileURLToPath((await getRunRow(db, runId)).artifact_uri);
}

/** A caller's artifact path inside the run's folder; RUN_ARTIFACT_INVALID if it would leave it. */
function resolveArtifactPath(root: string, artifactPath: string | undefined): string {
  if (!artifactPath) return root;
  const target = path.resolve(root, artifactPath);
  if (path.isAbsolute(artifactPath) || (target !== root && !target.startsWith(root + path.sep)))
    throw new MenagerieError(
      'RUN_ARTIFACT_INVALID',
      `artifact path '${artifactPath}' should be relative and stay inside the run's artifact folder`,
    );
  return target;
}

export async function logArtifact(
  db: Kysely<Database>,
  runId: string,
  localPath: string,
  artifactPath?: string,
): Promise<string> {
  const row = await getRunRow(db, runId);
  if (row.status !== 'RUNNING' || row.lifecycle !== 'active') throw notActive(row, 'artifacts');
  const source = path.resolve(localPath);
  if (!fs.existsSync(source))
    throw new MenagerieError('RUN_ARTIFACT_INVALID', `no file or folder at ${source} to log`);
  const root = fileURLToPath(row.artifact_uri);
  const folder = resolveArtifactPath(root, artifactPath);
  const target = path.join(folder, path.basename(source));
  fs.mkdirSync(folder, { recursive: true });
  fs.cpSync(source, target, { recursive: true });
  return path.relative(root, target).split(path.sep).join('/');
}

export async function listArtifacts(
  db: Kysely<Database>,
  runId: string,
  artifactPath?: string,
): Promise<ArtifactEntry[]> {
  const root = await runArtifactDir(db, runId);
  const folder = resolveArtifactPath(root, artifactPath);
  if (!fs.existsSync(folder)) return [];
  return fs
    .readdirSync(folder, { withFileTypes: true })
    .map((entry) => {
      const full = path.join(folder, entry.name);
      const isDir = entry.isDirectory();
      return {
        path: path.relative(root, full).split(path.sep).join('/'),
        isDir,
        bytes: isDir ? null : fs.statSync(full).size,
      };
    })
    .sort((a, b) => a.path.localeCompare(b.path));
}
