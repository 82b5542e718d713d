import { Arg, Ctx, ID, Mutation, Resolver, Root, Subscription } from 'type-graphql';
import { MenagerieError } from '../../core/errors.js';
import type { RunProgressUpdate } from '../../jobs/run-progress.js';
import { HyperParameters, type HpValue } from '../../plugin-api/hyperparameters.js';
import { Access } from '../access.js';
import type { GraphQLContext } from '../context.js';
import { RunProgress, TrainingInput, TuningInput } from '../job.js';
import { Run, toMetric, toRun } from '../run.js';
import { runProgressStream } from '../run-progress-stream.js';

const MAX_EPOCHS = 10_000;
const MAX_TRIALS = 10_000;

@Resolver()
export class JobResolver {
  @Mutation(() => Run, {
    description:
      'Starts a training run in a child process; returns it once the run exists (RUNNING). ' +
      'Follow it with `runProgress`. JOB_LIMIT while the server runs its maximum of jobs.',
  })
  async startTraining(
    @Ctx() ctx: GraphQLContext,
    @Arg('input', () => TrainingInput) input: TrainingInput,
  ): Promise<Run> {
    const plugin = ctx.services.plugins.get('model', input.plugin);
    const hyperparameters = parseHyperparameters(input.hyperparameters ?? null);
    // Checked here, so a bad value is an error now rather than a FAILED run later.
    const hp = new HyperParameters(hyperparameters);
    plugin.space(hp);
    const declared = new Set(hp.space.map((s) => s.name));
    const unknown = Object.keys(hyperparameters).filter((name) => !declared.has(name));
    if (unknown.length > 0) {
      throw new MenagerieError(
        'HP_INVALID',
        `${plugin.name} has no hyperparameter ${unknown.map((n) => `'${n}'`).join(', ')} ` +
          `(declared: ${[...declared].join(', ')})`,
      );
    }
    const runId = await ctx.services.jobs.startTraining({
      plugin: plugin.name,
      experiment: input.experiment ?? 'default',
      epochs: bounded('epochs', input.epochs ?? 10, MAX_EPOCHS),
      hyperparameters,
      ...(input.runName != null && { runName: input.runName }),
      ...(input.seed != null && { seed: bounded('seed', input.seed, 2 ** 31 - 1, 0) }),
      ...(input.batchSize != null && { batchSize: bounded('batchSize', input.batchSize, 1024) }),
      ...(input.patience != null && {
        patience: bounded('patience', input.patience, MAX_EPOCHS, 0),
      }),
    });
    return toRun(await ctx.services.tracking.getRun(runId));
  }

  @Mutation(() => Run, {
    description:
      'Starts a tuning run in a child process; its trials are child runs. Returns the tuning ' +
      'run once it exists.',
  })
  async startTuning(
    @Ctx() ctx: GraphQLContext,
    @Arg('input', () => TuningInput) input: TuningInput,
  ): Promise<Run> {
    const plugin = ctx.services.plugins.get('model', input.plugin);
    const tuner = ctx.services.plugins.get('tuner', input.tuner);
    const direction = input.direction ?? 'max';
    if (direction !== 'max' && direction !== 'min') {
      throw new MenagerieError(
        'BAD_USER_INPUT',
        `direction should be max or min, got '${direction.slice(0, 20)}'`,
      );
    }
    const runId = await ctx.services.jobs.startTuning({
      plugin: plugin.name,
      tuner: tuner.name,
      experiment: input.experiment ?? 'default',
      maxTrials: bounded('maxTrials', input.maxTrials ?? 10, MAX_TRIALS),
      epochs: bounded('epochs', input.epochs ?? 5, MAX_EPOCHS),
      objective: input.objective ?? 'val_accuracy',
      direction,
      ...(input.runName != null && { runName: input.runName }),
      ...(input.seed != null && { seed: bounded('seed', input.seed, 2 ** 31 - 1) }),
    });
    return toRun(await ctx.services.tracking.getRun(runId));
  }

  @Mutation(() => Run, {
    description:
      'Stops a training or tuning run this server started and waits for it to end KILLED. ' +
      'RUN_NOT_OWNED for runs started elsewhere (the CLI) and for single tuning trials.',
  })
  async cancelRun(@Ctx() ctx: GraphQLContext, @Arg('id', () => ID) id: string): Promise<Run> {
    await ctx.services.jobs.cancel(id);
    return toRun(await ctx.services.tracking.getRun(id));
  }

  @Access('admin')
  @Mutation(() => String, {
    description:
      "Ingests a folder (`<split>/<label>/*` or `<label>/*`) inside one of the server's ingest " +
      'roots (admin); returns a one-line summary.',
  })
  async ingest(
    @Ctx() ctx: GraphQLContext,
    @Arg('path', () => String) path: string,
  ): Promise<string> {
    const summary = await ctx.services.ingest.run(path);
    ctx.services.serving.imagesAdded();
    return summary;
  }

  @Subscription(() => RunProgress, {
    description:
      "A run's progress: first its current state, then batches, epochs and trials as they " +
      'happen; the stream ends after the update with its final status.',
    subscribe: ({ args, context }) =>
      runProgressStream((context as GraphQLContext).services, String(args['runId'])),
  })
  runProgress(
    @Root() update: RunProgressUpdate,
    @Arg('runId', () => ID) _runId: string,
  ): RunProgress {
    return { ...update, metrics: update.metrics.map(toMetric) };
  }
}

function parseHyperparameters(json: string | null): Record<string, HpValue> {
  if (json === null || json.trim() === '') return {};
  let value: unknown;
  try {
    value = JSON.parse(json);
  } catch {
    throw new MenagerieError(
      'BAD_USER_INPUT',
      'hyperparameters should be a JSON object, e.g. {"units": 16}',
    );
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new MenagerieError('BAD_USER_INPUT', 'hyperparameters should be a JSON object of values');
  }
  for (const [name, v] of Object.entries(value)) {
    if (!['string', 'number', 'boolean'].includes(typeof v) || !/^[\w.-]{1,100}$/.test(name)) {
      throw new MenagerieError(
        'BAD_USER_INPUT',
        `hyperparameter '${name.slice(0, 40)}' should be a name of letters, digits, '_', '.', '-' with a string, number or boolean value`,
      );
    }
  }
  return value as Record<string, HpValue>;
}

function bounded(name: string, value: number, max: number, min = 1): number {
  if (!Number.isInteger(value) || value < min || value > max) {
    throw new MenagerieError(
      'BAD_USER_INPUT',
      `${name} should be a whole number from ${min} to ${max}, got ${value}`,
    );
  }
  return value;
}
