import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openWorkspace } from '../../cli/workspace.js';
import { runCli } from '../helpers/cli.js';
import { tempDir } from '../helpers/fixtures.js';

describe('menagerie experiments and runs', () => {
  const { dir, remove } = tempDir('menagerie-tracking-cli-');
  const dataDir = path.join(dir, 'data');
  const ids: Record<string, string> = {};
  beforeAll(async () => {
    const workspace = await openWorkspace({ dataDir });
    const { tracking } = workspace;
    const experiment = await tracking.createExperiment('faces');
    for (const [name, acc, optimizer] of [
      ['slow', 0.81, 'sgd'],
      ['best', 0.97, 'adam'],
      ['ok', 0.92, 'adam'],
    ] as const) {
      const run = await tracking.createRun({ experimentId: experiment.id, name });
      await tracking.logParams(run.id, { optimizer });
      await tracking.logMetrics(run.id, { val_accuracy: acc, loss: Number.NaN }, { step: 3 });
      await tracking.endRun(run.id, 'FINISHED');
      ids[name] = run.id;
    }
    await workspace.close();
  });
  afterAll(remove);
  const cli = (...args: string[]) => runCli([...args, '--data-dir', dataDir]);

  it('creates, lists, deletes and restores experiments', () => {
    expect(cli('experiments', 'create', 'tuning', '--description', 'hp search').stdout).toMatch(
      /created experiment 'tuning' \(id 2\)/,
    );
    const list = cli('experiments', 'list');
    expect(list.code, list.stderr).toBe(0);
    expect(list.stdout).toMatch(/^1\s+faces\s+3\s+active/m);
    expect(list.stdout).toMatch(/^2\s+tuning\s+0\s+active\s+\S+\s+hp search$/m);
    expect(cli('experiments', 'delete', 'tuning').stdout).toMatch(/deleted experiment 'tuning'/);
    const json = JSON.parse(cli('experiments', 'list', '--all', '--json').stdout);
    expect(json).toMatchObject([
      { name: 'faces', runs: 3 },
      { name: 'tuning', lifecycle: 'deleted' },
    ]);
    expect(cli('experiments', 'restore', 'tuning').code).toBe(0);
    const missing = cli('experiments', 'delete', 'ghost');
    expect(missing.code).toBe(1);
    expect(missing.stderr).toMatch(/error EXPERIMENT_NOT_FOUND: no experiment is named 'ghost'/);
  });

  it('lists runs filtered and ordered, as a table or JSON, and shows one', () => {
    const table = cli(
      'runs',
      'list',
      '--experiment',
      'faces',
      '--filter',
      "params.optimizer = 'adam'",
      '--order-by',
      'metrics.val_accuracy DESC',
    );
    expect(table.code, table.stderr).toBe(0);
    const lines = table.stdout.trim().split('\n');
    expect(lines[0]).toMatch(/^run id\s+name\s+status\s+started\s+duration\s+metrics$/);
    expect(lines.slice(1).map((l) => l.split(/\s+/)[1])).toEqual(['best', 'ok']);
    expect(lines[1]).toMatch(/val_accuracy=0.97 loss=NaN$/);

    const json = JSON.parse(
      cli('runs', 'list', '--order-by', 'metrics.val_accuracy', '--max', '2', '--json').stdout,
    );
    expect(json.runs).toHaveLength(2);
    expect(json.runs.map((r: { name: string }) => r.name)).toEqual(['slow', 'ok']);
    expect(json.runs[1].metrics).toEqual({ loss: 'NaN', val_accuracy: 0.92 });
    expect(json.nextPageToken).toEqual(expect.any(String));

    const show = cli('runs', 'show', ids.best!);
    expect(show.code, show.stderr).toBe(0);
    expect(show.stdout).toMatch(/^run\s+\w{32} \(best\)$/m);
    expect(show.stdout).toMatch(/^optimizer\s+adam$/m);
    expect(show.stdout).toMatch(/^val_accuracy\s+0.97$/m);
  });

  it('fails with a code and the position for a bad filter or an unknown run', () => {
    const bad = cli('runs', 'list', '--filter', "params.optimizer = 'adam");
    expect(bad.code).toBe(1);
    expect(bad.stderr).toMatch(
      /error RUN_FILTER_INVALID: invalid filter at column 20 .*unterminated string/,
    );
    const orders = Array.from({ length: 1000 }, (_, i) => ['--order-by', `metrics.m${i}`]).flat();
    const tooMany = cli('runs', 'list', ...orders);
    expect(tooMany.code).toBe(1);
    expect(tooMany.stderr).toMatch(/^error RUN_FILTER_INVALID: .*at most 20 order-by clauses/m);
    expect(tooMany.stderr).not.toMatch(/^\s+at /m);
    const unknown = cli('runs', 'show', 'f'.repeat(32));
    expect(unknown.code).toBe(1);
    expect(unknown.stderr).toMatch(/error RUN_NOT_FOUND/);
  });
});
