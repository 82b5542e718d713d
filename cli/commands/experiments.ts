import type { Command } from 'commander';
import { MenagerieError } from '../../core/errors.js';
import type { Experiment, TrackingStore } from '../../tracking/tracking-store.js';
import { formatTable } from '../format-table.js';
import { openWorkspace } from '../workspace.js';

/** The experiment of that name, deleted ones included; EXPERIMENT_NOT_FOUND otherwise. */
export async function experimentByName(tracking: TrackingStore, name: string): Promise<Experiment> {
  const experiment = await tracking.getExperimentByName(name);
  if (!experiment)
    throw new MenagerieError(
      'EXPERIMENT_NOT_FOUND',
      `no experiment is named '${name}'; menagerie experiments list --all shows them`,
    );
  return experiment;
}

export function registerExperiments(program: Command): void {
  const experiments = program
    .command('experiments')
    .description('list, create, delete and restore tracking experiments');

  experiments
    .command('list')
    .description('experiments with their run counts')
    .option('--all', 'include deleted experiments')
    .option('--json', 'print JSON')
    .action(async (opts: { all?: boolean; json?: boolean }, command: Command) => {
      const workspace = await openWorkspace(command.optsWithGlobals());
      try {
        const list = await workspace.tracking.listExperiments({
          includeDeleted: opts.all === true,
        });
        const counts = new Map(
          (
            await workspace.database.db
              .selectFrom('runs')
              .select(['experiment_id', (eb) => eb.fn.countAll<number>().as('n')])
              .where('lifecycle', '=', 'active')
              .groupBy('experiment_id')
              .execute()
          ).map((r) => [r.experiment_id, Number(r.n)]),
        );
        if (opts.json) {
          console.log(
            JSON.stringify(
              list.map((e) => ({ ...e, runs: counts.get(e.id) ?? 0 })),
              null,
              2,
            ),
          );
          return;
        }
        console.log(
          formatTable(
            ['id', 'name', 'runs', 'lifecycle', 'created', 'description'],
            list.map((e) => [
              e.id,
              e.name,
              counts.get(e.id) ?? 0,
              e.lifecycle,
              new Date(e.createdAt).toISOString(),
              e.description ?? '',
            ]),
          ),
        );
      } finally {
        await workspace.close();
      }
    });

  experiments
    .command('create')
    .description('create an experiment')
    .argument('<name>')
    .option('--description <text>')
    .action(async (name: string, opts: { description?: string }, command: Command) => {
      const workspace = await openWorkspace(command.optsWithGlobals());
      try {
        const experiment = await workspace.tracking.createExperiment(name, {
          ...(opts.description ? { description: opts.description } : {}),
        });
        console.log(`created experiment '${experiment.name}' (id ${experiment.id})`);
      } finally {
        await workspace.close();
      }
    });

  for (const [verb, help] of [
    ['delete', 'soft-delete an experiment: its runs leave searches until it is restored'],
    ['restore', 'bring back a deleted experiment and its runs'],
  ] as const) {
    experiments
      .command(verb)
      .description(help)
      .argument('<name>')
      .action(async (name: string, _opts, command: Command) => {
        const workspace = await openWorkspace(command.optsWithGlobals());
        try {
          const experiment = await experimentByName(workspace.tracking, name);
          if (verb === 'delete') await workspace.tracking.deleteExperiment(experiment.id);
          else await workspace.tracking.restoreExperiment(experiment.id);
          console.log(
            `${verb === 'delete' ? 'deleted' : 'restored'} experiment '${experiment.name}'`,
          );
        } finally {
          await workspace.close();
        }
      });
  }
}
