import { Command, CommanderError } from 'commander';
import { isMenagerieError } from '../core/errors.js';
import { registerDemo } from './commands/demo.js';
import { registerDemoData } from './commands/demo-data.js';
import { registerDoctor, registerGc } from './commands/doctor.js';
import { registerEmbed } from './commands/embed.js';
import { registerEvaluate } from './commands/evaluate.js';
import { registerExperiments } from './commands/experiments.js';
import { registerIngest } from './commands/ingest.js';
import { registerModels } from './commands/models.js';
import { registerPlugins } from './commands/plugins.js';
import { registerTrain } from './commands/train.js';
import { registerTune } from './commands/tune.js';
import { registerRuns } from './commands/runs.js';
import { registerServe } from './commands/serve.js';

const program = new Command('menagerie')
  .description('Image classifiers from raw files to a served, versioned model')
  .option(
    '--data-dir <dir>',
    'database and blob store folder (env MENAGERIE_DATA_DIR, default .menagerie)',
  )
  .option(
    '--config <file>',
    'config file listing plugins (env MENAGERIE_CONFIG, default menagerie.config.{js,mjs,json})',
  )
  .showHelpAfterError()
  .exitOverride();

registerDemo(program);
registerDemoData(program);
registerIngest(program);
registerDoctor(program);
registerGc(program);
registerEmbed(program);
registerEvaluate(program);
registerModels(program);
registerPlugins(program);
registerTrain(program);
registerTune(program);
registerExperiments(program);
registerRuns(program);
registerServe(program);

try {
  await program.parseAsync(process.argv);
} catch (error) {
  if (error instanceof CommanderError) {
    process.exitCode = error.exitCode;
  } else if (isMenagerieError(error)) {
    console.error(`error ${error.code}: ${error.message}`);
    process.exitCode = 1;
  } else {
    console.error(error);
    process.exitCode = 1;
  }
}
