import fs from 'node:fs/promises';
import path from 'node:path';
import type { BlobStore } from '../data/blob-store.js';
import type { OpenDatabase } from '../data/database.js';
import { MenagerieError } from '../core/errors.js';
import { ingestImages, type IngestReport } from '../data/ingest/ingest.js';

/**
 * Ingest over the API, confined to configured folders: the path a client sends is resolved
 * (lexically, then with realpath) and must stay inside one of `roots`, so neither `..` nor
 * a symlink reaches elsewhere. Paths outside the roots are refused before the file system is
 * touched, so the answer says nothing about what exists there. Manifests are refused too:
 * their rows may name files anywhere.
 *
 * ```ts
 * const ingest = createIngestService({ database, blobs, roots: ['/srv/images'] });
 * const summary = await ingest.run('/srv/images/afhq'); // 'added 300 of 300 files …'
 * ```
 */
export interface IngestService {
  /** The configured roots (as given). */
  roots: readonly string[];
  /** Ingests a folder inside a root; returns a one-line summary. */
  run(source: string): Promise<string>;
  /**
   * The real path of a folder inside a root, by the same rule: for other readers of client
   * paths (`evaluateModel`). INGEST_PATH_FORBIDDEN or INGEST_SOURCE_NOT_FOUND.
   */
  resolveFolder(source: string): Promise<string>;
}

/** `MENAGERIE_INGEST_ROOTS`: folders separated by the platform's path delimiter (`:`). */
export function parseIngestRoots(text: string | undefined): string[] {
  return (text ?? '')
    .split(path.delimiter)
    .map((root) => root.trim())
    .filter((root) => root !== '');
}

export function createIngestService(options: {
  database: OpenDatabase;
  blobs: BlobStore;
  roots: readonly string[];
  maxPixels?: number;
}): IngestService {
  const roots = options.roots.map((root) => path.resolve(root));
  let running = false;

  const inside = (root: string, target: string) =>
    target === root || target.startsWith(root.endsWith(path.sep) ? root : root + path.sep);

  async function resolveSource(source: string): Promise<string> {
    if (roots.length === 0) {
      throw new MenagerieError(
        'INGEST_PATH_FORBIDDEN',
        'this server has no ingest roots, so ingest over the API is off; start it with ' +
          '--ingest-root <dir> or MENAGERIE_INGEST_ROOTS',
      );
    }
    const forbidden = () =>
      new MenagerieError(
        'INGEST_PATH_FORBIDDEN',
        `'${source.slice(0, 200)}' is not inside an ingest root (${roots.join(', ')})`,
      );
    // eslint-disable-next-line no-control-regex
    if (typeof source !== 'string' || source === '' || /[\u0000-\u001f]/.test(source))
      throw forbidden();
    const lexical = path.resolve(source);
    if (!roots.some((root) => inside(root, lexical))) throw forbidden();
    let real: string;
    try {
      real = await fs.realpath(lexical);
    } catch {
      throw new MenagerieError('INGEST_SOURCE_NOT_FOUND', `no such folder: ${lexical}`);
    }
    const realRoots = await Promise.all(roots.map((root) => fs.realpath(root).catch(() => null)));
    if (!realRoots.some((root) => root !== null && inside(root, real))) throw forbidden();
    const stat = await fs.stat(real);
    if (!stat.isDirectory()) {
      throw new MenagerieError(
        'INGEST_PATH_FORBIDDEN',
        `${lexical} is a file; over the API only folders are read (a manifest's rows may ` +
          'name files anywhere: give it to the CLI)',
      );
    }
    return real;
  }

  return {
    roots: options.roots,
    resolveFolder: resolveSource,
    async run(source) {
      const folder = await resolveSource(source);
      if (running) {
        throw new MenagerieError('JOB_LIMIT', 'an ingest is running; wait for it to finish');
      }
      running = true;
      try {
        const report = await ingestImages(
          { database: options.database, blobs: options.blobs },
          {
            source: folder,
            // Leave threads to serving: sharp decodes on libuv's pool of four.
            concurrency: 2,
            ...(options.maxPixels !== undefined && { maxPixels: options.maxPixels }),
          },
        );
        return summarise(folder, report);
      } finally {
        running = false;
      }
    },
  };
}

/** The one line an ingest answers with, from its report. */
export function summarise(folder: string, report: IngestReport): string {
  const parts = [
    `added ${report.added} of ${report.total} files from ${folder} (${report.layout} layout)`,
    `${report.unchanged} unchanged`,
    `${report.duplicates.length} duplicates`,
    `${report.rejected.length} rejected`,
  ];
  if (report.ignored > 0) parts.push(`${report.ignored} ignored`);
  return `${parts.join(', ')} in ${report.seconds.toFixed(1)} s`;
}
