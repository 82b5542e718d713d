import { Field, ID, InputType, Int, ObjectType } from 'type-graphql';
import type { RunStatus } from '../data/tables.js';
import { Metric, RunStatusEnum } from './run.js';

@InputType({ description: 'A training job: one run of a model plugin on the train/val splits.' })
export class TrainingInput {
  @Field(() => String, { description: 'Model plugin, e.g. `cnn` (see `modelPlugins`).' })
  plugin!: string;

  @Field(() => String, { nullable: true, defaultValue: 'default' })
  experiment!: string | null;

  @Field(() => String, { nullable: true })
  runName?: string | null;

  @Field(() => Int, { nullable: true, defaultValue: 10 })
  epochs!: number | null;

  @Field(() => String, {
    nullable: true,
    description: 'JSON object of hyperparameter values, e.g. `{"conv1_filters": 64}`.',
  })
  hyperparameters?: string | null;

  @Field(() => Int, { nullable: true })
  seed?: number | null;

  @Field(() => Int, { nullable: true, description: 'Batch size (default 32).' })
  batchSize?: number | null;

  @Field(() => Int, {
    nullable: true,
    description: 'Early-stopping patience in epochs (default 4); 0 trains every epoch asked for.',
  })
  patience?: number | null;
}

@InputType({ description: 'A tuning job: trials of a model plugin proposed by a tuner.' })
export class TuningInput {
  @Field(() => String)
  plugin!: string;

  @Field(() => String, { description: 'Tuner plugin, e.g. `hyperband` (see `tuners`).' })
  tuner!: string;

  @Field(() => String, { nullable: true, defaultValue: 'default' })
  experiment!: string | null;

  @Field(() => String, { nullable: true })
  runName?: string | null;

  @Field(() => Int, { nullable: true, defaultValue: 10 })
  maxTrials!: number | null;

  @Field(() => Int, {
    nullable: true,
    defaultValue: 5,
    description: 'Epochs per trial (Hyperband: at most).',
  })
  epochs!: number | null;

  @Field(() => String, { nullable: true, defaultValue: 'val_accuracy' })
  objective!: string | null;

  @Field(() => String, { nullable: true, defaultValue: 'max', description: 'max or min.' })
  direction!: string | null;

  @Field(() => Int, { nullable: true })
  seed?: number | null;
}

@ObjectType({
  description:
    "A job's progress: a batch, an epoch's metrics, a trial starting or ending, and last the " +
    "run's final status. Subscribers to a tuning run also get its trials' updates.",
})
export class RunProgress {
  @Field(() => ID, { description: 'The run this update is about (a trial, within tuning).' })
  runId!: string;

  @Field(() => ID, { nullable: true, description: 'The tuning run, for a trial.' })
  parentRunId!: string | null;

  @Field(() => RunStatusEnum)
  status!: RunStatus;

  @Field(() => Int, { nullable: true, description: 'The epoch, counting from 1.' })
  epoch!: number | null;

  @Field(() => Int, { nullable: true })
  epochs!: number | null;

  @Field(() => Int, { nullable: true, description: 'The batch within the epoch, from 1.' })
  batch!: number | null;

  @Field(() => Int, { nullable: true })
  batches!: number | null;

  @Field(() => [Metric], {
    description: "An epoch's metrics (step = 0-based epoch), or a batch's `batch_loss`.",
  })
  metrics!: Metric[];

  @Field(() => String, { nullable: true })
  message!: string | null;
}
