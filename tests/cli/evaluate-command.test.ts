import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openWorkspace } from '../../cli/workspace.js';
import { parseJobEvent, type JobEvent } from '../../jobs/run-progress.js';
import type { ModelEvaluation } from '../../registry/model-evaluations.js';
import { createModelRegistry } from '../../registry/model-registry.js';
import { registerModelArtifact } from '../../registry/register-model.js';
import { runCli } from '../helpers/cli.js';
import { COLOUR_IMAGES, writeColourFolder } from '../helpers/evaluation-data.js';
import { tempDir } from '../helpers/fixtures.js';
import { saveColourModel } from '../helpers/models.js';

describe('menagerie evaluate (CLI)', () => {
  const { dir, remove } = tempDir('menagerie-evaluate-cli-');
  const dataDir = path.join(dir, 'data');
  const folder = path.join(dir, 'holdout');
  const evaluate = (...args: string[]) => runCli(['evaluate', ...args, '--data-dir', dataDir]);

  beforeAll(async () => {
    const ws = await openWorkspace({ dataDir });
    const registry = createModelRegistry({ db: ws.database.db });
    await saveColourModel(path.join(dir, 'model'));
    await registerModelArtifact(registry, ws.plugins, {
      name: 'colours',
      dir: path.join(dir, 'model'),
    });
    await registry.promoteChampion('colours', 1);
    await ws.close();
    await writeColourFolder(folder);
  });
  afterAll(remove);

  it('prints the report and exits 0 though some files are unreadable', () => {
    const r = evaluate('--model', 'models:/colours@champion', folder);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(
      /^evaluation [0-9a-f]{32}: colours version 1 on folder .* 9 images .* FINISHED$/m,
    );
    expect(r.stdout).toMatch(/^accuracy 0\.6667 .* ECE 0\.\d{4} /m);
    expect(r.stdout).toContain('confusion matrix (rows: true label, columns: predicted)');
    expect(r.stdout).toMatch(/^\(0\.9, 1\.0\]\s+4\s+/m);
    expect(r.stdout).toMatch(/^1\s+0\.9588\s+blue\s+green\s+.*lime\.png$/m);
    expect(r.stdout).toMatch(/empty\.jpg: empty/);
    expect(r.stdout).toMatch(/truncated\.jpg: unreadable/);
    expect(r.stdout).toMatch(/notes\.jpg: unreadable/);
    expect(r.stdout).toContain('labels the model does not know: purple (2)');
    // The progress bar goes to stderr, a plain line when it is not a terminal.
    expect(r.stderr).toMatch(/evaluate colours v1 12\/12 100%/);
  });

  it('gives the whole evaluation with --json, for the short model forms too', () => {
    const r = evaluate('--model', 'colours/1', folder, '--json', '--user', 'ana');
    expect(r.code, r.stderr).toBe(0);
    const e = JSON.parse(r.stdout) as ModelEvaluation;
    expect(e).toMatchObject({ name: 'colours', version: 1, status: 'FINISHED', createdBy: 'ana' });
    expect(e.dataset.imageCount).toBe(COLOUR_IMAGES.length);
    expect(e.scores!.calibration.bins).toHaveLength(10);
    expect(e.worstErrors.map((w) => w.rank)).toEqual([1, 2, 3]);
    expect(e.unreadable).toHaveLength(4);
  });

  it('speaks the job protocol with --progress-json', () => {
    const r = evaluate(
      '--model',
      'colours@champion',
      folder,
      '--progress-json',
      '--batch-size',
      '5',
    );
    expect(r.code, r.stderr).toBe(0);
    const events = r.stdout
      .split('\n')
      .map(parseJobEvent)
      .filter((e): e is JobEvent => e !== null);
    expect(events[0]).toMatchObject({ event: 'evaluation', name: 'colours', version: 1 });
    const done = events.flatMap((e) => (e.event === 'evaluation-progress' ? [e.done] : []));
    expect(done).toEqual([0, 5, 10, 12]);
  });

  it('refuses a missing or doubled data source, and an unknown split, naming them', () => {
    for (const [args, message] of [
      [['--model', 'colours/1'], /error CONFIG_INVALID: say what to evaluate on/],
      [['--model', 'colours/1', folder, '--split', 'val'], /error CONFIG_INVALID/],
      [['--model', 'colours/1', '--split', 'holdout'], /expected train, val, test/],
      [['--model', 'colours/1', '--split', 'val'], /error DATASET_EMPTY/],
      [['--model', 'colours', folder], /error MODEL_URI_INVALID/],
    ] as const) {
      const r = evaluate(...args);
      expect(r.code, `${args.join(' ')}: ${r.stdout}`).not.toBe(0);
      expect(r.stderr).toMatch(message);
    }
  });
});
