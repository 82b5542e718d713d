import type { Command } from 'commander';
import { formatTable } from '../format-table.js';
import { openWorkspace } from '../workspace.js';

export function registerPlugins(program: Command): void {
  program
    .command('plugins')
    .description('list model, storage and tuner plugins: built-in and from the config file')
    .option('--json', 'print JSON')
    .action(async (opts: { json?: boolean }, command: Command) => {
      const workspace = await openWorkspace(command.optsWithGlobals());
      try {
        const rows = workspace.plugins.list().map((p) => ({
          kind: p.kind,
          name: p.name,
          version: p.version ?? '',
          source: workspace.pluginSources.get(`${p.kind}:${p.name}`) ?? '',
          description: p.description ?? '',
        }));
        if (opts.json) {
          console.log(
            JSON.stringify({ config: workspace.configFile ?? null, plugins: rows }, null, 2),
          );
          return;
        }
        console.log(`config: ${workspace.configFile ?? 'none (menagerie.config.{js,mjs,json})'}`);
        console.log(
          formatTable(
            ['kind', 'name', 'version', 'source', 'description'],
            rows.map((r) => [r.kind, r.name, r.version, r.source, r.description]),
          ),
        );
      } finally {
        await workspace.close();
      }
    });
}
