import { InvalidArgumentError, type Command } from 'commander';
import { createModelRegistry } from '../../registry/model-registry.js';
import { runEmbeddingJob } from '../../serving/embedding-job.js';
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
 * similarity search. The server runs it as a child process; rerunning resumes a killed job.
 */
export function registerEmbed(program: Command): void {
  program
    .command('embed')
    .description('compute a model version’s embeddings of every image, for similar-image search')
    .requiredOption('--model <name>', 'registered model')
    .requiredOption('--version <n>', 'model version', parsePositiveInt)
    .option('--batch-size <n>', 'images per forward pass', parsePositiveInt, 32)
    .option('--pause-ms <ms>', 'pause between batches, to leave CPU to serving', parseMs, 0)
    .option('--json', 'print the finished job as JSON')
    .action(async (opts, command: Command) => {
      const globals = command.optsWithGlobals<{ dataDir?: string; config?: string }>();
      const workspace = await openWorkspace(globals);
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
