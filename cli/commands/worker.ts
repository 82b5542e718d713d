import type { Command } from 'commander';
import { MenagerieError } from '../../core/errors.js';
import { queueConfigFromEnv } from '../../jobs/job-queue.js';
import { startQueueWorker } from '../../jobs/queue-worker.js';
import { createModelEvaluations } from '../../registry/model-evaluations.js';
import { parsePositiveInt } from '../options.js';
import { openWorkspace } from '../workspace.js';
import { jobContext } from './train.js';

export function registerWorker(program: Command): void {
  program
    .command('worker')
    .description(
      'run queued jobs (training, tuning trials, evaluation) from MENAGERIE_QUEUE_URL, each in a child process',
    )
    .option(
      '--concurrency <n>',
      'jobs at once (default 1: one training fills two cores)',
      parsePositiveInt,
      1,
    )
    .option(
      '--tf-threads <n>',
      'TensorFlow threads per job (TF_NUM_INTRAOP_THREADS)',
      parsePositiveInt,
    )
    .action(async (opts: { concurrency: number; tfThreads?: number }, command: Command) => {
      const queue = queueConfigFromEnv();
      if (!queue) {
        throw new MenagerieError(
          'CONFIG_INVALID',
          'menagerie worker needs MENAGERIE_QUEUE_URL=redis://host:port (the queue the servers use)',
        );
      }
      const workspace = await openWorkspace(command.optsWithGlobals());
      const worker = startQueueWorker({
        queue,
        context: jobContext(workspace),
        evaluations: createModelEvaluations({ db: workspace.database.db }),
        dataDir: workspace.dataDir,
        ...(workspace.configFile !== undefined && { configFile: workspace.configFile }),
        concurrency: opts.concurrency,
        ...(opts.tfThreads !== undefined && {
          env: {
            TF_NUM_INTRAOP_THREADS: String(opts.tfThreads),
            TF_NUM_INTEROP_THREADS: '1',
            OMP_NUM_THREADS: String(opts.tfThreads),
          },
        }),
        log: (line) => console.error(`[worker ${process.pid}] ${line}`),
      });
      await worker.ready();
      console.error(`worker ${process.pid} taking jobs from ${redactQueueUrl(queue.url)}`);
      await new Promise<void>((resolve) => {
        const stop = () => {
          process.off('SIGINT', stop);
          process.off('SIGTERM', stop);
          resolve();
        };
        process.on('SIGINT', stop);
        process.on('SIGTERM', stop);
      });
      console.error('worker stopping: running jobs go back to the queue');
      await worker.close();
      await workspace.close();
    });
}

function redactQueueUrl(url: string): string {
  return url.replace(/\/\/[^@/]*@/, '//***@');
}
