import { Field, Float, ID, InputType, Int, ObjectType, registerEnumType } from 'type-graphql';
import {
  EVALUATION_STATUSES,
  type EvaluationDatasetKind,
  type EvaluationStatus,
  type Split,
} from '../data/tables.js';
import type { EvaluationProgressUpdate } from '../jobs/evaluation-progress.js';
import type { ModelEvaluation as StoredEvaluation } from '../registry/model-evaluations.js';
import { ModelVersionRef } from './model-version-ref.js';
import { ClassProbability } from './prediction.js';
import { evaluationConfusionMatrixUrl, evaluationErrorUrl } from './resource-urls.js';
import { ClassMetrics, ConfusionMatrix } from './run.js';
import { SplitEnum } from './split.js';
import { TimestampScalar } from './timestamp-scalar.js';

export const EvaluationStatusEnum = Object.fromEntries(EVALUATION_STATUSES.map((s) => [s, s])) as {
  [S in EvaluationStatus]: S;
};
registerEnumType(EvaluationStatusEnum, {
  name: 'EvaluationStatus',
  description: 'RUNNING until it ends; FAILED with its `error`; KILLED when it was stopped.',
});

/** GraphQL names for the stored kinds: `FOLDER` is stored as `'folder'`. */
export const EvaluationDatasetKindEnum = {
  FOLDER: 'folder',
  MANIFEST: 'manifest',
  SPLIT: 'split',
} as const satisfies Record<string, EvaluationDatasetKind>;
registerEnumType(EvaluationDatasetKindEnum, {
  name: 'EvaluationDatasetKind',
  description: 'A folder of `<label>/*` images, a CSV manifest, or a split of the catalogue.',
});

@InputType({ description: 'What to evaluate, on what: give `split` or `folder`, not both.' })
export class EvaluateModelInput {
  @Field(() => String, {
    description: 'The version: `models:/faces@champion`, `models:/faces/3`, or `faces/3`.',
  })
  model!: string;

  @Field(() => SplitEnum, { nullable: true, description: 'A split of the catalogue.' })
  split?: Split | null;

  @Field(() => String, {
    nullable: true,
    description: "A folder of `<label>/*` images inside one of the server's ingest roots.",
  })
  folder?: string | null;
}

@ObjectType({ description: 'The data an evaluation ran on.' })
export class EvaluationDataset {
  @Field(() => EvaluationDatasetKindEnum)
  kind!: EvaluationDatasetKind;

  @Field(() => String, { description: "The folder's or manifest's path, or the split's name." })
  source!: string;

  @Field(() => Int, { description: 'Images scored: readable, with a label the model knows.' })
  imageCount!: number;

  @Field(() => String, {
    nullable: true,
    description:
      'sha256 over the sorted (image sha256, label) pairs scored: evaluations with the same ' +
      'value ran on the same data. Null until the evaluation finishes.',
  })
  sha256!: string | null;
}

@ObjectType({ description: 'One confidence bin of the reliability table.' })
export class ReliabilityBin {
  @Field(() => Float, { description: 'The bin holds confidences in (lower, upper].' })
  lower!: number;

  @Field(() => Float)
  upper!: number;

  @Field(() => Int)
  count!: number;

  @Field(() => Float, { nullable: true, description: 'Share right; null for an empty bin.' })
  accuracy!: number | null;

  @Field(() => Float, { nullable: true, description: 'Mean confidence; null for an empty bin.' })
  confidence!: number | null;
}

@ObjectType({
  description:
    'One of the most confident wrong predictions, with its image (kept in the blob store).',
})
export class EvaluationError {
  @Field(() => Int, { description: '1 is the most confident mistake.' })
  rank!: number;

  @Field(() => String, { description: "The file's path, or the catalogue image's source path." })
  source!: string;

  @Field(() => String)
  trueLabel!: string;

  @Field(() => String)
  predictedLabel!: string;

  @Field(() => Float, { description: "The predicted label's probability." })
  confidence!: number;

  @Field(() => [ClassProbability], { description: "Every class, in the model's label order." })
  probabilities!: ClassProbability[];

  @Field(() => String, { description: 'Hex sha256 of the image bytes.' })
  sha256!: string;

  @Field(() => String, { description: 'jpeg, png or webp.' })
  format!: string;

  @Field(() => String, { description: 'Where the image is served (GET).' })
  url!: string;

  /** For the field resolvers (thumbnailUrl, image). */
  evaluationId!: string;
  imageId!: number | null;
}

@ObjectType({ description: 'A file left out of an evaluation, and why.' })
export class UnreadableFile {
  @Field(() => String)
  path!: string;

  @Field(() => String, {
    description:
      'empty, unreadable, unsupported-format, too-large, not-found, unknown-folder, manifest-row or invalid-label.',
  })
  reason!: string;

  @Field(() => String)
  detail!: string;
}

@ObjectType({
  description: 'A label of the data the model does not predict; its images were left out.',
})
export class UnknownLabel {
  @Field(() => String)
  label!: string;

  @Field(() => Int)
  count!: number;
}

@ObjectType({
  description:
    "A model version's evaluation on a data set (like mlflow.evaluate): scores, calibration, " +
    'the files left out and the worst errors. Scores are null until it is FINISHED.',
})
export class ModelEvaluation {
  @Field(() => ID, { description: '32 lowercase hex digits.' })
  id!: string;

  @Field(() => ModelVersionRef)
  modelVersion!: ModelVersionRef;

  @Field(() => EvaluationStatusEnum)
  status!: EvaluationStatus;

  @Field(() => EvaluationDataset)
  dataset!: EvaluationDataset;

  @Field(() => Float, { nullable: true })
  accuracy!: number | null;

  @Field(() => Float, { nullable: true, description: 'Mean categorical cross-entropy.' })
  loss!: number | null;

  @Field(() => Float, { nullable: true })
  macroPrecision!: number | null;

  @Field(() => Float, { nullable: true })
  macroRecall!: number | null;

  @Field(() => Float, { nullable: true })
  macroF1!: number | null;

  @Field(() => Float, {
    nullable: true,
    description: 'Expected calibration error over 10 equal-width confidence bins.',
  })
  ece!: number | null;

  @Field(() => [ClassMetrics])
  classMetrics!: ClassMetrics[];

  @Field(() => ConfusionMatrix, { nullable: true })
  confusionMatrix!: ConfusionMatrix | null;

  @Field(() => String, {
    nullable: true,
    description: 'Where the confusion matrix PNG is served (GET); null until it exists.',
  })
  confusionMatrixUrl!: string | null;

  @Field(() => [ReliabilityBin], { description: 'Lowest confidences first; empty until finished.' })
  reliability!: ReliabilityBin[];

  @Field(() => [EvaluationError], { description: 'Most confident first.' })
  worstErrors!: EvaluationError[];

  @Field(() => [UnreadableFile])
  unreadable!: UnreadableFile[];

  @Field(() => [UnknownLabel])
  unknownLabels!: UnknownLabel[];

  @Field(() => Int, { description: 'Files looked at so far (of `total`).' })
  done!: number;

  @Field(() => Int)
  total!: number;

  @Field(() => String, { nullable: true, description: 'Why it FAILED or was KILLED.' })
  error!: string | null;

  @Field(() => String, { nullable: true })
  createdBy!: string | null;

  @Field(() => TimestampScalar)
  createdAt!: number;

  @Field(() => TimestampScalar, { nullable: true })
  finishedAt!: number | null;
}

/** GraphQL Float carries no NaN or infinity. */
const finite = (x: number | undefined): number | null =>
  x !== undefined && Number.isFinite(x) ? x : null;

export function toModelEvaluation(e: StoredEvaluation): ModelEvaluation {
  const s = e.scores;
  return {
    id: e.id,
    modelVersion: { name: e.name, version: e.version },
    status: e.status,
    dataset: { ...e.dataset },
    accuracy: finite(s?.accuracy),
    loss: finite(s?.loss),
    macroPrecision: finite(s?.macroPrecision),
    macroRecall: finite(s?.macroRecall),
    macroF1: finite(s?.macroF1),
    ece: finite(s?.calibration.ece),
    classMetrics: s?.perClass ?? [],
    confusionMatrix: s ? { labels: s.labels, counts: s.confusionMatrix } : null,
    confusionMatrixUrl: e.confusionMatrixUri ? evaluationConfusionMatrixUrl(e.id) : null,
    reliability: s?.calibration.bins ?? [],
    worstErrors: e.worstErrors.map((w) => ({
      rank: w.rank,
      source: w.source,
      trueLabel: w.trueLabel,
      predictedLabel: w.predictedLabel,
      confidence: w.confidence,
      probabilities: w.probabilities.map((probability, i) => ({
        label: s?.labels[i] ?? String(i),
        probability,
      })),
      sha256: w.sha256,
      format: w.format,
      url: evaluationErrorUrl(e.id, w.rank),
      evaluationId: e.id,
      imageId: w.imageId,
    })),
    unreadable: e.unreadable.map((u) => ({ ...u })),
    unknownLabels: e.unknownLabels.map((u) => ({ ...u })),
    done: e.done,
    total: e.total,
    error: e.error,
    createdBy: e.createdBy,
    createdAt: e.createdAt,
    finishedAt: e.finishedAt,
  };
}

@ObjectType({
  description:
    "An evaluation's progress: files looked at so far, and last its final status. The stream " +
    'ends after the final update.',
})
export class EvaluationProgress {
  @Field(() => ID)
  evaluationId!: string;

  @Field(() => EvaluationStatusEnum)
  status!: EvaluationStatus;

  @Field(() => Int, { nullable: true })
  done!: number | null;

  @Field(() => Int, { nullable: true })
  total!: number | null;

  @Field(() => String, { nullable: true })
  message!: string | null;

  @Field(() => Boolean, { description: 'The last update: the evaluation ended.' })
  final!: boolean;
}

export const toEvaluationProgress = (u: EvaluationProgressUpdate): EvaluationProgress => ({ ...u });
