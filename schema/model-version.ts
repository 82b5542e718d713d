import { Field, ID, Int, ObjectType } from 'type-graphql';
import type { ModelStage, ModelVersionStatus } from '../data/tables.js';
import { decoderOf, type ImageDecoder } from '../data/input-spec.js';
import type { ModelVersion as RegistryVersion } from '../registry/model-registry.js';
import { Connection } from './connection.js';
import { Param, toKeyValues } from './key-value.js';
import { ModelVersionStatusEnum, StageNameEnum } from './model-stage.js';
import { TimestampScalar } from './timestamp-scalar.js';

@ObjectType({ description: 'A numbered, loadable version of a registered model.' })
export class ModelVersion {
  @Field(() => String)
  name!: string;

  @Field(() => Int)
  version!: number;

  @Field(() => ModelVersionStatusEnum)
  status!: ModelVersionStatus;

  @Field(() => StageNameEnum)
  stage!: ModelStage;

  @Field(() => [String])
  aliases!: string[];

  @Field(() => ID, { nullable: true, description: 'The tracking run that produced it.' })
  runId!: string | null;

  @Field(() => String, { description: 'The model plugin that built it and loads it back.' })
  plugin!: string;

  @Field(() => String, { nullable: true })
  pluginVersion!: string | null;

  @Field(() => [String], { description: 'Class names in output order.' })
  labels!: string[];

  @Field(() => Int, { description: 'Input images are resized to inputSize × inputSize.' })
  inputSize!: number;

  @Field(() => String, {
    description:
      "How its images become pixels, in training and serving alike: 'sharp' (libvips, lanczos3) " +
      "or 'tensorflow' (JPEGs through TensorFlow's libjpeg at a reduced scale, then bilinear).",
  })
  imageDecoder!: ImageDecoder;

  @Field(() => [Param], { description: "The run's final metrics when registered." })
  metrics!: Param[];

  @Field(() => String, { nullable: true })
  description!: string | null;

  @Field(() => TimestampScalar)
  createdAt!: number;
}

export const toModelVersion = (v: RegistryVersion): ModelVersion => ({
  name: v.name,
  version: v.version,
  status: v.status,
  stage: v.stage,
  aliases: [...v.aliases],
  runId: v.runId,
  plugin: v.plugin,
  pluginVersion: v.pluginVersion,
  labels: [...v.labels],
  inputSize: v.inputSpec.size,
  imageDecoder: decoderOf(v.inputSpec),
  metrics: toKeyValues(v.metrics),
  description: v.description,
  createdAt: v.createdAt,
});

@ObjectType()
export class ModelVersionConnection extends Connection(ModelVersion, 'ModelVersion') {}
