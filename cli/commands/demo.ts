import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import type { Command } from 'commander';
import { writeDemoDataset } from '../../demo/demo-dataset.js';
import { isMenagerieError } from '../../core/errors.js';
import { ingestImages } from '../../data/ingest/ingest.js';
import { createModelRegistry, type ModelVersion } from '../../registry/model-registry.js';
import { registerRunModel } from '../../registry/register-model.js';
import { runTrackedTraining } from '../../jobs/tracked-training.js';
import { startEmbeddingJob } from '../../serving/embedding-job.js';
import { formatCounts } from '../format-table.js';
import { parsePositiveInt } from '../options.js';
import { createProgress } from '../progress.js';
import { openWorkspace, type Workspace } from '../workspace.js';
import { epochProgress, jobContext } from './train.js';

/** The registered model the demo trains and the server follows by default. */
export const DEMO_MODEL = 'faces';

export function registerDemo(program: Command): void {
  program
    .command('demo')
    .description(
      'the whole loop on generated data: draw and ingest the demo set, train and promote a ' +
        'champion, then serve the API and dashboard (a second start reuses all of it)',
    )
    .option('--per-class <n>', 'demo images per class', parsePositiveInt, 400)
    .option('--seed <seed>', 'demo data seed', '1')
    .option(
      '--epochs <n>',
      'training epochs for the first champion (early stopping may end it sooner)',
      parsePositiveInt,
      20,
    )
    .option(
      '--photos <folder>',
      'labelled photos (`<label>/*` or `<split>/<label>/*`) to use instead of the drawn faces; ' +
        'recorded where they are, not copied (use a data dir of their own)',
    )
    .option('--port <n>', 'port to serve on', '4000')
    .option('--no-serve', 'stop after the champion is promoted')
    .action(async (opts: DemoOptions, command: Command) => {
      const globals = command.optsWithGlobals<{ dataDir?: string; config?: string }>();
      const workspace = await openWorkspace(globals);
      let token: string;
      try {
        await prepareData(workspace, opts);
        const champion = await ensureChampion(workspace, opts.epochs);
        const started = await startEmbeddingJob(
          { database: workspace.database, dataDir: workspace.dataDir },
          { name: champion.name, version: champion.version },
        );
        if (started) {
          started.finished.catch(() => {}); // the server reports embedding status; similar falls back meanwhile
          console.error(
            'demo: computing image embeddings for similar-image search in the background',
          );
        }
        token = demoToken(workspace.dataDir);
      } finally {
        await workspace.close();
      }
      if (!opts.serve) return;
      await ensureDashboard();
      console.error(
        `demo: write token for the dashboard (saved in ${path.join(workspace.dataDir, 'demo-token')}): ${token}`,
      );
      const args = ['--data-dir', workspace.dataDir];
      if (globals.config) args.push('--config', globals.config);
      args.push('serve', '--port', opts.port, '--token', `admin:${token}`);
      await command.parent!.parseAsync(args, { from: 'user' });
    });
}

interface DemoOptions {
  photos?: string;
  perClass: number;
  seed: string;
  epochs: number;
  port: string;
  serve: boolean;
}

async function prepareData(workspace: Workspace, opts: DemoOptions): Promise<void> {
  if (opts.photos !== undefined) {
    // Real photos: the same loop on them, so the champion answers for real animals.
    const source = path.resolve(opts.photos);
    const progress = createProgress('ingest');
    const report = await ingestImages(workspace, {
      source,
      reference: true,
      onProgress: (p) => progress.update(p.done, p.total),
    });
    progress.finish();
    console.error(
      `demo photos: ${report.added} added from ${source}, ${report.unchanged} already there, ${report.rejected.length} rejected`,
    );
    console.error(formatCounts(report.counts));
    return;
  }
  const dir = path.join(workspace.dataDir, 'demo-data');
  const drawn = createProgress('demo-data');
  const written = await writeDemoDataset({
    dir,
    perClass: opts.perClass,
    seed: opts.seed,
    onProgress: (done, total) => drawn.update(done, total),
  });
  drawn.finish();
  const ingestProgress = createProgress('ingest');
  const report = await ingestImages(workspace, {
    source: dir,
    onProgress: (p) => ingestProgress.update(p.done, p.total),
  });
  ingestProgress.finish();
  console.error(
    `demo data: ${written.files} images in ${dir}; ${report.added} added, ${report.unchanged} already there`,
  );
  console.error(formatCounts(report.counts));
}

/** The current champion of DEMO_MODEL, training and promoting one if there is none. */
async function ensureChampion(workspace: Workspace, epochs: number): Promise<ModelVersion> {
  const registry = createModelRegistry({ db: workspace.database.db, user: 'demo' });
  try {
    const champion = await registry.getVersionByAlias(DEMO_MODEL, 'champion');
    console.error(`demo: ${DEMO_MODEL} version ${champion.version} is already the champion`);
    return champion;
  } catch (error) {
    // No model or no champion yet: train one. Anything else (a broken database) is real.
    if (
      !isMenagerieError(error, 'MODEL_NOT_FOUND') &&
      !isMenagerieError(error, 'MODEL_ALIAS_NOT_FOUND')
    )
      throw error;
  }
  // The baseline and a transfer model, side by side in one experiment; the better one by
  // validation accuracy becomes the champion.
  const context = jobContext(workspace);
  const candidates: { plugin: string; runName: string; description: string }[] = [
    {
      plugin: 'cnn',
      runName: 'demo-baseline',
      description: 'demo baseline: the reference CNN trained from scratch',
    },
    {
      plugin: 'transfer',
      runName: 'demo-transfer',
      description: 'demo transfer: MobileNetV2 ×1.4 (ImageNet) features and a trained head',
    },
  ];
  const trained: { version: ModelVersion; accuracy: number }[] = [];
  for (const candidate of candidates) {
    console.error(`demo: training ${candidate.plugin} for up to ${epochs} epochs (one-time)`);
    const { runId, result } = await runTrackedTraining(context, {
      plugin: candidate.plugin,
      epochs,
      experiment: 'demo',
      runName: candidate.runName,
      observer: epochProgress(epochs),
    });
    if (result.status !== 'FINISHED') throw new Error(`demo training ended ${result.status}`);
    const version = await registerRunModel(registry, context.tracking, workspace.plugins, {
      name: DEMO_MODEL,
      runId,
      description: candidate.description,
    });
    trained.push({ version, accuracy: result.metrics?.accuracy ?? 0 });
  }
  for (const { version, accuracy } of trained) {
    console.error(
      `demo: ${DEMO_MODEL} version ${version.version} (${version.plugin}): val_accuracy ${accuracy.toFixed(3)}`,
    );
  }
  const best = trained.reduce((a, b) => (b.accuracy > a.accuracy ? b : a));
  await registry.promoteChampion(DEMO_MODEL, best.version.version, {
    comment: `demo: the better of ${trained.length} by val_accuracy (${best.accuracy.toFixed(3)})`,
  });
  console.error(`demo: ${DEMO_MODEL} version ${best.version.version} promoted to champion`);
  return registry.getModelVersion(DEMO_MODEL, best.version.version);
}

/** A write token kept in the data dir, so the dashboard's saved token survives restarts. */
function demoToken(dataDir: string): string {
  const file = path.join(dataDir, 'demo-token');
  if (fs.existsSync(file)) return fs.readFileSync(file, 'utf8').trim();
  const token = randomBytes(16).toString('hex');
  fs.writeFileSync(file, `${token}\n`, { mode: 0o600 });
  return token;
}

/** Builds the dashboard (client/dist) once, if this checkout has not built it yet. */
async function ensureDashboard(): Promise<void> {
  const root = path.resolve(import.meta.dirname, '../../client');
  if (fs.existsSync(path.join(root, 'dist', 'index.html'))) return;
  console.error('demo: building the dashboard (once)');
  const { build } = await import('vite');
  await build({ configFile: path.join(root, 'vite.config.ts'), logLevel: 'warn' });
}
