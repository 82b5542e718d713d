import { Field, Float, ID, ObjectType } from 'type-graphql';
import type { RecordedPrediction } from '../serving/prediction-service.js';
import { ModelVersionRef } from './model-version-ref.js';
import { TimestampScalar } from './timestamp-scalar.js';

@ObjectType()
export class ClassProbability {
  @Field(() => String)
  label!: string;

  @Field(() => Float)
  probability!: number;
}

@ObjectType({ description: 'What the serving model said about an uploaded image.' })
export class Prediction {
  @Field(() => ID, { description: 'Pass to submitFeedback.' })
  id!: number;

  @Field(() => String, { description: 'The most probable class, given even when uncertain.' })
  label!: string;

  @Field(() => Float)
  confidence!: number;

  @Field(() => Boolean, { description: "Confidence is below the server's threshold." })
  uncertain!: boolean;

  @Field(() => [ClassProbability], { description: 'The topK most probable, highest first.' })
  probabilities!: ClassProbability[];

  @Field(() => ModelVersionRef, { description: 'The version that answered.' })
  modelVersion!: ModelVersionRef;

  @Field(() => Float, { description: 'Decode, queueing and forward pass, in milliseconds.' })
  latencyMs!: number;

  @Field(() => TimestampScalar)
  createdAt!: number;

  /** The recorded prediction, for `similar`. */
  recorded!: RecordedPrediction;
}

export function toPrediction(recorded: RecordedPrediction, topK: number | null): Prediction {
  const all = recorded.probabilities.map((c) => ({ label: c.label, probability: c.p }));
  return {
    id: recorded.id,
    label: recorded.label,
    confidence: recorded.confidence,
    uncertain: recorded.uncertain,
    probabilities: topK === null ? all : all.slice(0, topK),
    modelVersion: { ...recorded.modelVersion },
    latencyMs: recorded.latencyMs,
    createdAt: recorded.createdAt,
    recorded,
  };
}
