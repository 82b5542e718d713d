import { Field, Float, ID, Int, ObjectType, registerEnumType } from 'type-graphql';
import { RUN_STATUSES, type RunStatus } from '../data/tables.js';
import type { Metric as StoredMetric, Run as StoredRun } from '../tracking/tracking-store.js';
import { Connection } from './connection.js';
import { TimestampScalar } from './timestamp-scalar.js';

export const RunStatusEnum = Object.fromEntries(RUN_STATUSES.map((s) => [s, s])) as {
  [S in RunStatus]: S;
};
registerEnumType(RunStatusEnum, {
  name: 'RunStatus',
  description: 'RUNNING until the run ends; KILLED when it was stopped (cancelRun, Ctrl-C).',
});

@ObjectType({ description: 'One logged value of a metric.' })
export class Metric {
  @Field(() => String)
  key!: string;

  @Field(() => Float, {
    nullable: true,
    description:
      'Null when the value logged was NaN or infinite (GraphQL Float cannot carry them).',
  })
  value!: number | null;

  @Field(() => Int, { description: 'The epoch (0-based) for training metrics.' })
  step!: number;

  @Field(() => TimestampScalar)
  timestamp!: number;
}

export function toMetric(metric: StoredMetric): Metric {
  return {
    key: metric.key,
    value: Number.isFinite(metric.value) ? metric.value : null,
    step: metric.step,
    timestamp: metric.timestamp,
  };
}

@ObjectType({ description: 'A tracked training or tuning run (MLflow semantics).' })
export class Run {
  @Field(() => ID, { description: '32 lowercase hex digits.' })
  id!: string;

  @Field(() => String, { nullable: true })
  name!: string | null;

  @Field(() => RunStatusEnum)
  status!: RunStatus;

  @Field(() => TimestampScalar)
  startTime!: number;

  @Field(() => TimestampScalar, { nullable: true })
  endTime!: number | null;

  @Field(() => ID, { nullable: true, description: 'The tuning run, for a tuning trial.' })
  parentRunId!: string | null;

  @Field(() => String, { nullable: true, description: "URI of the run's artifact folder." })
  artifactUri!: string | null;

  /** The tracking store's run, for the field resolvers. */
  stored!: StoredRun;
}

export function toRun(run: StoredRun): Run {
  return {
    id: run.id,
    name: run.name,
    status: run.status,
    startTime: run.startTime,
    endTime: run.endTime,
    parentRunId: run.parentRunId,
    artifactUri: run.artifactUri,
    stored: run,
  };
}

@ObjectType()
export class RunConnection extends Connection(Run, 'Run') {}

@ObjectType({
  description:
    "Counts `counts[true][predicted]`: a run's on the val split, or an evaluation's on its data.",
})
export class ConfusionMatrix {
  @Field(() => [String], { description: 'Class names; rows and columns follow this order.' })
  labels!: string[];

  @Field(() => [[Int]])
  counts!: number[][];
}

@ObjectType({
  description:
    "One class's scores: a run's on the val split at the best epoch, or an evaluation's.",
})
export class ClassMetrics {
  @Field(() => String)
  label!: string;

  @Field(() => Float)
  precision!: number;

  @Field(() => Float)
  recall!: number;

  @Field(() => Float)
  f1!: number;

  @Field(() => Int, { description: 'True examples of the class.' })
  support!: number;
}
