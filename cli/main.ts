import { Command, CommanderError, InvalidArgumentError } from 'commander';
import { isMenagerieError } from '../core/errors.js';
import { registerDemo } from './commands/demo.js';
import { registerDemoData } from './commands/demo-data.js';
import { registerDoctor } from './commands/doctor.js';
import { registerGc } from './commands/gc.js';
import { registerEmbed } from './commands/embed.js';
import { registerEvaluate } from './commands/evaluate.js';
import { registerExperiments } from './commands/experiments.js';
import { registerIngest } from './commands/ingest.js';
import { registerMigrateStore } from './commands/migrate-store.js';
import { registerModels } from './commands/models.js';
import { registerPlugins } from './commands/plugins.js';
import { registerTrain } from './commands/train.js';
import { registerTune, registerTuneTrial } from './commands/tune.js';
import { registerRuns } from './commands/runs.js';
import { registerServe } from './commands/serve.js';
import { registerWorker } from './commands/worker.js';

// A job child of `menagerie worker`: when the worker dies (SIGKILL, a lost machine) the
// child goes too, so a job another worker takes over never runs to completion twice.
if (process.env.MENAGERIE_EXIT_WITH_PARENT === '1') {
  const parent = process.ppid;
  setInterval(() => {
    if (process.ppid !== parent) process.exit(137);
  }, 200).unref();
}

const program = new Command('menagerie')
  .description('Image classifiers from raw files to a served, versioned model')
  .option(
    '--data-dir <dir>',
    'database and blob store folder (env MENAGERIE_DATA_DIR, default .menagerie)',
  )
  .option(
    '--database <url>',
    'SQLite file or postgres:// URL (env MENAGERIE_DATABASE_URL, default <data-dir>/menagerie.db)',
  )
  .option(
    '--store <url>',
    'blob and artifact store, s3://bucket/prefix?endpoint=… (env MENAGERIE_STORE_URL, default <data-dir>)',
  )
  .option(
    '--config <file>',
    'config file listing plugins (env MENAGERIE_CONFIG, default menagerie.config.{js,mjs,json})',
  )
  .showHelpAfterError()
  .exitOverride()
  // Jobs and embeddings run in child processes that reopen the workspace from the
  // environment: the flags become the variables they inherit.
  .hook('preAction', (_program, action) => {
    const { database, store } = action.optsWithGlobals<{ database?: string; store?: string }>();
    if (database) process.env.MENAGERIE_DATABASE_URL = database;
    if (store) process.env.MENAGERIE_STORE_URL = store;
  });

registerDemo(program);
registerDemoData(program);
registerIngest(program);
registerDoctor(program);
registerGc(program);
registerMigrateStore(program);
registerEmbed(program);
registerEvaluate(program);
registerModels(program);
registerPlugins(program);
registerTrain(program);
registerTune(program);
registerTuneTrial(program);
registerExperiments(program);
registerRuns(program);
registerServe(program);
registerWorker(program);

try {
  await program.parseAsync(process.argv);
} catch (error) {
  if (error instanceof InvalidArgumentError) {
    // Thrown by a command's own checks of its options, which commander has not printed.
    console.error(`error CONFIG_INVALID: ${error.message}`);
    process.exitCode = 1;
  } else if (error instanceof CommanderError) {
    // Printed by commander already (unknown option, bad value, --help).
    process.exitCode = error.exitCode;
  } else if (isMenagerieError(error)) {
    console.error(`error ${error.code}: ${error.message}`);
    process.exitCode = 1;
  } else {
    console.error(error);
    process.exitCode = 1;
  }
}
