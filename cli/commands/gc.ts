import { InvalidArgumentError, type Command } from 'commander';
import { sweepOrphanBlobs } from '../../data/ingest/ingest.js';
import { DEFAULT_UPLOAD_RETENTION, expireUploads } from '../../data/upload-retention.js';
import { openWorkspace } from '../workspace.js';

const DAY_MS = 24 * 60 * 60 * 1000;
const MB = 1024 * 1024;

function parseNonNegative(value: string): number {
  const n = Number(value);
  if (!Number.isFinite(n) || n < 0)
    throw new InvalidArgumentError(`expected a number ≥ 0, got '${value}'`);
  return n;
}

export function registerGc(program: Command): void {
  program
    .command('gc')
    .description(
      'expire prediction uploads past the retention limit, then delete blobs nothing refers to',
    )
    .option(
      '--upload-max-age <days>',
      `keep prediction uploads this many days (default ${DEFAULT_UPLOAD_RETENTION.maxAgeMs / DAY_MS}; as serve's)`,
      parseNonNegative,
    )
    .option(
      '--upload-max-mb <mb>',
      `keep at most this many MB of prediction uploads (default ${DEFAULT_UPLOAD_RETENTION.maxBytes / MB})`,
      parseNonNegative,
    )
    .action(async (opts: { uploadMaxAge?: number; uploadMaxMb?: number }, command: Command) => {
      const workspace = await openWorkspace(command.optsWithGlobals());
      try {
        const expired = await expireUploads(workspace, {
          maxAgeMs:
            opts.uploadMaxAge === undefined
              ? DEFAULT_UPLOAD_RETENTION.maxAgeMs
              : opts.uploadMaxAge * DAY_MS,
          maxBytes:
            opts.uploadMaxMb === undefined
              ? DEFAULT_UPLOAD_RETENTION.maxBytes
              : opts.uploadMaxMb * MB,
        });
        console.log(
          `expired ${expired.expired} kept upload${expired.expired === 1 ? '' : 's'} ` +
            `(${(expired.bytes / MB).toFixed(1)} MB deleted)`,
        );
        // A minute's grace: a concurrent ingest commits its rows within that.
        const swept = await sweepOrphanBlobs(workspace, Date.now() - 60_000);
        console.log(`deleted ${swept} unreferenced blobs`);
      } finally {
        await workspace.close();
      }
    });
}
