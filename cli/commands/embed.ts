import path from 'node:path';
import { InvalidArgumentError, type Command } from 'commander';
import { createModelRegistry } from '../../registry/model-registry.js';
import { runEmbeddingJob } from '../../serving/embedding-job.js';
import { DEFAULT_SIMILARITY_BACKBONE, runFeatureSpaceJob } from '../../serving/feature-space.js';
import { loadServedModel } from '../../serving/served-model.js';
import { parsePositiveInt } from '../options.js';
import { createProgress } from '../progress.js';
import { openWorkspace } from '../workspace.js';

function parseMs(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 0)
    throw new InvalidArgumentError(`expected whole milliseconds ≥ 0, got '${value}'`);
  return n;
}

/**
 * `menagerie embed --model faces --version 3`: computes the version's image embeddings for
 * similarity search. `menagerie embed --features`: fills the pretrained backbone's feature
 * space instead (what similar images use by default). The server runs both as child
 * processes; rerunning resumes a killed job.
 */
export function registerEmbed(program: Command): void {
  program
    .command('embed')
    .description(
      'compute every image’s vector for similar-image search: in a model version’s space, or with --features in a pretrained backbone’s',
    )
    .option('--model <name>', 'registered model')
    .option('--version <n>', 'model version', parsePositiveInt)
    .option('--features', 'fill the pretrained backbone’s feature space instead of a version’s')
    .option(
      '--backbone <name>',
      'backbone of the feature space (with --features)',
      DEFAULT_SIMILARITY_BACKBONE,
    )
    .option('--batch-size <n>', 'images per forward pass', parsePositiveInt, 32)
    .option('--pause-ms <ms>', 'pause between batches, to leave CPU to serving', parseMs, 0)
    .option('--json', 'print the finished job as JSON')
    .action(async (opts, command: Command) => {
      const globals = command.optsWithGlobals<{ dataDir?: string; config?: string }>();
      if (opts.features && (opts.model || opts.version))
        command.error('error: give --features, or --model and --version, not both');
      if (!opts.features && (!opts.model || !opts.version))
        command.error(
          'error: give --model <name> and --version <n>, or --features for the pretrained feature space',
        );
      const workspace = await openWorkspace(globals);
      if (opts.features) {
        try {
          await embedFeatures(workspace, opts.backbone as string, Boolean(opts.json));
        } finally {
          await workspace.close();
        }
        return;
      }
      const ref = { name: opts.model as string, version: opts.version as number };
      const progress = createProgress(`embed ${ref.name} v${ref.version}`);
      try {
        const registry = createModelRegistry({ db: workspace.database.db });
        const job = await runEmbeddingJob(
          {
            database: workspace.database,
            blobs: workspace.blobs,
            loadModel: async () =>
              loadServedModel(await registry.getModelVersion(ref.name, ref.version), workspace),
          },
          ref,
          {
            batchSize: opts.batchSize,
            pauseMs: opts.pauseMs,
            onProgress: ({ done, total }) => progress.update(done, total),
          },
        );
        progress.finish();
        if (opts.json) console.log(JSON.stringify(job));
        else
          console.log(
            `${ref.name} version ${ref.version}: ${job.total} images embedded (${job.dimension} dimensions)` +
              (job.error ? `; ${job.error}` : ''),
          );
      } finally {
        await workspace.close();
      }
    });
}

async function embedFeatures(
  workspace: Awaited<ReturnType<typeof openWorkspace>>,
  backbone: string,
  json: boolean,
): Promise<void> {
  const progress = createProgress(`embed --features ${backbone}`);
  const space = await runFeatureSpaceJob(
    {
      database: workspace.database,
      blobs: workspace.blobs,
      backbones: workspace.backbones,
      cacheDir: path.join(workspace.dataDir, 'cache'),
    },
    { backbone, onProgress: ({ done, total }) => progress.update(done, total) },
  );
  progress.finish();
  if (json) console.log(JSON.stringify(space));
  else
    console.log(
      `${space.space}: ${space.total} images (${space.dimension} dimensions)` +
        (space.error ? `; ${space.error}` : ''),
    );
}
