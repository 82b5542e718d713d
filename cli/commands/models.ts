import type { Command } from 'commander';
import { MenagerieError } from '../../core/errors.js';
import {
  createModelRegistry,
  type ModelRegistry,
  type ModelVersion,
  type StageTransition,
} from '../../registry/model-registry.js';
import { registerModelArtifact, registerRunModel } from '../../registry/register-model.js';
import { formatTable } from '../format-table.js';
import type { Workspace } from '../workspace.js';
import { parsePositiveInt } from '../options.js';
import { openWorkspace } from '../workspace.js';

async function withRegistry<T>(
  command: Command,
  run: (registry: ModelRegistry, workspace: Workspace) => Promise<T>,
): Promise<T> {
  const globals = command.optsWithGlobals<{ dataDir?: string; user?: string }>();
  const workspace = await openWorkspace(globals);
  try {
    const registry = createModelRegistry({
      db: workspace.database.db,
      ...(globals.user !== undefined && { user: globals.user }),
    });
    return await run(registry, workspace);
  } finally {
    await workspace.close();
  }
}

const time = (ms: number) => new Date(ms).toISOString().replace('T', ' ').slice(0, 19);

function describeVersion(v: ModelVersion): string {
  const aliases = v.aliases.length ? ` @${v.aliases.join(' @')}` : '';
  return `${v.name} version ${v.version} (${v.stage}, ${v.status})${aliases}`;
}

function formatHistory(rows: readonly StageTransition[]): string {
  return formatTable(
    ['when', 'version', 'change', 'user', 'comment'],
    rows.map((t) => {
      const change =
        t.action === 'stage'
          ? `${t.fromStage} → ${t.toStage}`
          : t.action === 'alias_set'
            ? `@${t.alias} ${t.previousVersion ? `from v${t.previousVersion}` : 'set'}`
            : t.action === 'alias_delete'
              ? `@${t.alias} removed`
              : t.action === 'create'
                ? 'registered'
                : `deleted (was ${t.fromStage})`;
      return [time(t.at), t.version, change, t.user, t.comment ?? ''];
    }),
  );
}

/** `menagerie models …`: the model registry from the command line. */
export function registerModels(program: Command): void {
  const models = program
    .command('models')
    .description('the model registry: versions, stages, aliases, champion, history')
    .option('--user <name>', 'who is recorded for changes (default: the OS user)');

  models
    .command('list')
    .description('registered models with their latest version and aliases')
    .option('--name-like <pattern>', "SQL LIKE pattern, e.g. '%faces%'")
    .option('--first <n>', 'page size', parsePositiveInt, 50)
    .option('--after <cursor>', 'the cursor a previous page printed')
    .option('--json', 'print JSON')
    .action(async (opts, command: Command) =>
      withRegistry(command, async (registry) => {
        const page = await registry.listRegisteredModels({
          nameLike: opts.nameLike,
          first: opts.first,
          after: opts.after,
        });
        if (opts.json) return console.log(JSON.stringify(page, null, 2));
        console.log(
          formatTable(
            ['name', 'latest', 'aliases', 'updated'],
            page.items.map((m) => [
              m.name,
              m.latestVersion ?? '-',
              Object.entries(m.aliases)
                .map(([a, v]) => `@${a}=v${v}`)
                .join(' '),
              time(m.updatedAt),
            ]),
          ),
        );
        if (page.endCursor) console.log(`more: --after ${page.endCursor}`);
      }),
    );

  models
    .command('show')
    .description('a model, its aliases and its versions (newest first)')
    .argument('<name>')
    .option('--json', 'print JSON')
    .action(async (name: string, opts, command: Command) =>
      withRegistry(command, async (registry) => {
        const model = await registry.getRegisteredModel(name);
        const versions = await registry.listVersions(name, { first: 1000 });
        if (opts.json)
          return console.log(JSON.stringify({ ...model, versions: versions.items }, null, 2));
        console.log(`${model.name}${model.description ? `: ${model.description}` : ''}`);
        for (const [k, v] of Object.entries(model.tags)) console.log(`  tag ${k}=${v}`);
        console.log(
          formatTable(
            ['version', 'stage', 'status', 'aliases', 'plugin', 'run', 'metrics', 'created'],
            versions.items.map((v) => [
              String(v.version),
              v.stage,
              v.status,
              v.aliases.map((a) => `@${a}`).join(' '),
              v.plugin,
              v.runId ?? '',
              Object.entries(v.metrics)
                .map(([k, x]) => `${k}=${Number(x.toFixed(4))}`)
                .join(' '),
              time(v.createdAt),
            ]),
          ),
        );
      }),
    );

  models
    .command('register')
    .description('register a saved model (a folder with menagerie.json) as a new version')
    .requiredOption('--name <name>', 'registered model; created if new')
    .option('--run <runId>', 'the tracking run that produced it')
    .option('--source <dir>', 'the model artifact folder')
    .option('--description <text>')
    .action(async (opts, command: Command) =>
      withRegistry(command, async (registry, workspace) => {
        if (!opts.source && !opts.run)
          throw new MenagerieError(
            'CONFIG_INVALID',
            'say which model: --run <runId> or --source <dir>',
          );
        const { user } = command.optsWithGlobals<{ user?: string }>();
        const common = {
          name: opts.name,
          description: opts.description ?? null,
          ...(user !== undefined && { user }),
        };
        const version = opts.source
          ? await registerModelArtifact(registry, workspace.plugins, {
              ...common,
              dir: opts.source,
              runId: opts.run ?? null,
              artifacts: workspace.artifacts,
            })
          : await registerRunModel(registry, workspace.tracking, workspace.plugins, {
              ...common,
              runId: opts.run,
            });
        console.log(`registered ${describeVersion(version)}`);
        if (version.status === 'FAILED') {
          console.error(`registration failed: ${version.statusMessage}`);
          process.exitCode = 1;
        }
      }),
    );

  models
    .command('transition')
    .description('move a version to None, Staging, Production or Archived')
    .argument('<name>')
    .argument('<version>', 'version number', parsePositiveInt)
    .argument('<stage>')
    .option('--archive-existing', "archive the stage's other versions in the same transaction")
    .option('--comment <text>')
    .action(async (name: string, version: number, stage: string, opts, command: Command) =>
      withRegistry(command, async (registry) => {
        const v = await registry.transitionStage(name, version, stage, {
          archiveExisting: opts.archiveExisting === true,
          comment: opts.comment,
        });
        console.log(describeVersion(v));
      }),
    );

  models
    .command('alias')
    .description(
      "point an alias at a version, or remove it with --delete ('champion': use promote)",
    )
    .argument('<name>')
    .argument('<alias>')
    .argument('[version]', 'version number', parsePositiveInt)
    .option('--delete', 'remove the alias')
    .option('--comment <text>')
    .action(
      async (name: string, alias: string, version: number | undefined, opts, command: Command) =>
        withRegistry(command, async (registry) => {
          if (opts.delete) {
            await registry.deleteAlias(name, alias, { comment: opts.comment });
            return console.log(`removed @${alias} from ${name}`);
          }
          if (version === undefined)
            throw new MenagerieError('CONFIG_INVALID', 'give a version, or --delete');
          const v = await registry.setAlias(name, alias, version, { comment: opts.comment });
          console.log(describeVersion(v));
        }),
    );

  models
    .command('promote')
    .description('make a version the champion: alias, Production stage and archiving in one step')
    .argument('<name>')
    .argument('<version>', 'version number', parsePositiveInt)
    .option('--comment <text>')
    .action(async (name: string, version: number, opts, command: Command) =>
      withRegistry(command, async (registry) => {
        const result = await registry.promoteChampion(name, version, { comment: opts.comment });
        console.log(`champion: ${describeVersion(result.version)}`);
        if (result.previousChampion)
          console.log(`  previous champion: v${result.previousChampion}`);
        if (result.archived.length) console.log(`  archived: v${result.archived.join(', v')}`);
      }),
    );

  models
    .command('history')
    .description('every stage move and alias change: who, when, from, to, why')
    .argument('<name>')
    .option('--version <n>', 'one version only', parsePositiveInt)
    .option('--json', 'print JSON')
    .action(async (name: string, opts, command: Command) =>
      withRegistry(command, async (registry) => {
        const rows = await registry.getTransitions(name, opts.version);
        if (opts.json) return console.log(JSON.stringify(rows, null, 2));
        console.log(formatHistory(rows));
      }),
    );

  models
    .command('resolve')
    .description('the version a models:/ URI names (models:/faces@champion, models:/faces/3)')
    .argument('<uri>')
    .action(async (uri: string, _opts, command: Command) =>
      withRegistry(command, async (registry) => {
        const v = await registry.resolveModelUri(uri);
        console.log(`${describeVersion(v)} ${v.source}`);
      }),
    );

  models
    .command('delete')
    .description('delete a version, or a whole model; refused while it serves unless --force')
    .argument('<name>')
    .argument('[version]', 'version number', parsePositiveInt)
    .option('--force', 'also when aliased or in Production (never the champion version)')
    .option('--comment <text>')
    .action(async (name: string, version: number | undefined, opts, command: Command) =>
      withRegistry(command, async (registry) => {
        const force = opts.force === true;
        if (version === undefined) {
          await registry.deleteRegisteredModel(name, { force });
          return console.log(`deleted model ${name}`);
        }
        await registry.deleteModelVersion(name, version, { force, comment: opts.comment });
        console.log(`deleted ${name} version ${version}`);
      }),
    );
}
