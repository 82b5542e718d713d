import type { Command } from 'commander';
import { copyWorkspace } from '../workspace-copy.js';
import { openWorkspace, type OpenWorkspaceOptions } from '../workspace.js';

export function registerMigrateStore(program: Command): void {
  program
    .command('migrate-store')
    .description(
      'copy this workspace (rows, blobs, artifacts, embeddings) to another database and store, ' +
        'then verify counts and sha256; run it again to resume',
    )
    .requiredOption('--to-database <url>', 'target: a SQLite file or a postgres:// URL')
    .requiredOption(
      '--to-store <url>',
      "target: s3://bucket/prefix?endpoint=…, or 'local' for the data directory's folders",
    )
    .action(async (opts: { toDatabase: string; toStore: string }, command: Command) => {
      const globals = command.optsWithGlobals<OpenWorkspaceOptions>();
      const source = await openWorkspace(globals);
      try {
        const target = await openWorkspace({
          ...globals,
          database: opts.toDatabase,
          store: opts.toStore === 'local' ? null : opts.toStore,
        });
        try {
          console.log(
            `copying ${source.database.location} + ${source.blobs.location} → ` +
              `${target.database.location} + ${target.blobs.location}`,
          );
          await copyWorkspace(source, target, { log: (line) => console.log(line) });
        } finally {
          await target.close();
        }
      } finally {
        await source.close();
      }
    });
}
