/**
 * Responses for the dashboard operations that schema/planned.graphql declares but this
 * server may not serve yet (predict, tracking, registry, jobs). The screenshot test answers
 * them from here only while the real schema lacks the root field, so every page can be
 * looked at today and is looked at against the real resolvers once they land.
 */

export interface SeededImage {
  id: string;
  label: string;
  split: 'TRAIN' | 'VAL' | 'TEST';
}

const T0 = Date.UTC(2025, 4, 12, 9, 30);
const EPOCHS = 12;

const image = (origin: string, i: SeededImage) => ({
  __typename: 'Image',
  id: i.id,
  thumbnailUrl: `${origin}/images/${i.id}/thumb?size=256`,
  split: i.split,
  label: { __typename: 'Label', id: i.label, name: i.label },
});

function curve(start: number, end: number, noise: number, seed: number) {
  return Array.from({ length: EPOCHS }, (_, step) => {
    const t = step / (EPOCHS - 1);
    const wobble = Math.sin((step + 1) * (seed + 1.7)) * noise;
    return start + (end - start) * (1 - Math.exp(-3.2 * t)) + wobble;
  });
}

const RUNS = [
  {
    id: 'a1f3',
    name: 'cnn-adam-3e-3',
    lr: '0.003',
    opt: 'adam',
    filters: '32',
    acc: 0.912,
    loss: 0.241,
    seed: 1,
  },
  {
    id: 'b7c2',
    name: 'cnn-sgd-1e-2',
    lr: '0.01',
    opt: 'sgd',
    filters: '32',
    acc: 0.861,
    loss: 0.352,
    seed: 2,
  },
  {
    id: 'c9d4',
    name: 'mobilenet-head',
    lr: '0.001',
    opt: 'adam',
    filters: '64',
    acc: 0.948,
    loss: 0.162,
    seed: 3,
  },
];

function metricsOf(run: (typeof RUNS)[number]) {
  const series: Record<string, number[]> = {
    loss: curve(1.05, run.loss - 0.06, 0.012, run.seed),
    val_loss: curve(1.08, run.loss, 0.025, run.seed + 4),
    accuracy: curve(0.36, run.acc + 0.03, 0.006, run.seed + 1),
    val_accuracy: curve(0.34, run.acc, 0.012, run.seed + 2),
  };
  return series;
}

const metric = (key: string, value: number, step: number) => ({
  __typename: 'Metric',
  key,
  value,
  step,
  timestamp: String(T0 + step * 60_000),
});

function runRow(run: (typeof RUNS)[number], children: { id: string }[] = []) {
  const m = metricsOf(run);
  return {
    __typename: 'Run',
    id: run.id,
    name: run.name,
    status: 'FINISHED',
    startTime: String(T0 + run.seed * 3_600_000),
    endTime: String(T0 + run.seed * 3_600_000 + 734_000),
    parentRunId: null,
    params: [
      { __typename: 'Param', key: 'epochs', value: String(EPOCHS) },
      { __typename: 'Param', key: 'filters', value: run.filters },
      { __typename: 'Param', key: 'learning_rate', value: run.lr },
      { __typename: 'Param', key: 'optimizer', value: run.opt },
    ],
    latestMetrics: Object.entries(m).map(([key, values]) =>
      metric(key, values.at(-1)!, EPOCHS - 1),
    ),
    children,
  };
}

const LABELS = ['cat', 'dog', 'wild'];

function tuningRun() {
  const trials = Array.from({ length: 10 }, (_, i) => {
    const lr = 10 ** (-4 + (((i * 7) % 10) / 10) * 2.5);
    const units = [32, 64, 128][i % 3]!;
    const acc =
      0.93 - Math.abs(Math.log10(lr) + 2.4) * 0.09 + (units === 64 ? 0.01 : 0) - (i % 4) * 0.004;
    return {
      __typename: 'Run',
      id: `t${i}`,
      name: `trial-${String(i).padStart(2, '0')}`,
      status: i === 9 ? 'RUNNING' : 'FINISHED',
      startTime: String(T0 + i * 120_000),
      endTime: i === 9 ? null : String(T0 + i * 120_000 + 110_000),
      parentRunId: 'tune1',
      params: [
        { __typename: 'Param', key: 'learning_rate', value: lr.toPrecision(3) },
        { __typename: 'Param', key: 'dense_units', value: String(units) },
        { __typename: 'Param', key: 'dropout', value: (0.1 + (i % 5) * 0.1).toFixed(1) },
      ],
      latestMetrics:
        i === 9 ? [] : [metric('val_accuracy', acc, 4), metric('val_loss', 1.1 - acc, 4)],
      children: [],
    };
  });
  return {
    __typename: 'Run',
    id: 'tune1',
    name: 'tune-cnn-bayes',
    status: 'RUNNING',
    startTime: String(T0),
    endTime: null,
    parentRunId: null,
    params: [
      { __typename: 'Param', key: 'objective', value: 'val_accuracy' },
      { __typename: 'Param', key: 'direction', value: 'max' },
    ],
    latestMetrics: [],
    children: trials,
  };
}

function version(n: number, stage: string, aliases: string[], acc: number, loss: number) {
  return {
    __typename: 'ModelVersion',
    name: 'pets',
    version: n,
    status: 'READY',
    stage,
    aliases,
    plugin: 'menagerie:cnn',
    labels: LABELS,
    metrics: [
      { __typename: 'Param', key: 'val_accuracy', value: String(acc) },
      { __typename: 'Param', key: 'val_loss', value: String(loss) },
    ],
    createdAt: String(T0 + n * 86_400_000),
    run: { __typename: 'Run', id: RUNS[n - 1]?.id ?? 'a1f3', name: RUNS[n - 1]?.name ?? null },
  };
}

/** The answer for one operation, or undefined to let the real server answer. */
export function plannedResponse(
  operation: string,
  variables: Record<string, unknown>,
  origin: string,
  images: readonly SeededImage[],
): unknown {
  const tuning = tuningRun();
  switch (operation) {
    case 'Serving':
      return {
        serving: {
          __typename: 'ServingInfo',
          model: { __typename: 'ModelVersionRef', name: 'pets', version: 2 },
          labels: LABELS,
          loadedAt: String(T0),
        },
      };
    case 'Predict':
      return {
        predict: {
          __typename: 'Prediction',
          id: 'p1',
          label: 'cat',
          confidence: 0.873,
          uncertain: false,
          probabilities: [
            { __typename: 'ClassProbability', label: 'cat', probability: 0.873 },
            { __typename: 'ClassProbability', label: 'wild', probability: 0.094 },
            { __typename: 'ClassProbability', label: 'dog', probability: 0.033 },
          ],
          modelVersion: { __typename: 'ModelVersionRef', name: 'pets', version: 2 },
          latencyMs: 7.4,
          similar: {
            __typename: 'SimilarImages',
            method: 'EMBEDDING',
            images: images
              .filter((i) => i.label === 'cat')
              .map((i, n) => ({
                __typename: 'SimilarImage',
                distance: 0.12 + n * 0.037,
                image: image(origin, i),
              })),
          },
        },
      };
    case 'ImageSimilar':
      return {
        image: {
          __typename: 'Image',
          id: variables['id'],
          similar: {
            __typename: 'SimilarImages',
            method: 'EMBEDDING',
            images: images.slice(0, 8).map((i, n) => ({
              __typename: 'SimilarImage',
              distance: 0.1 + n * 0.05,
              image: image(origin, i),
            })),
          },
        },
      };
    case 'Experiments':
      return {
        experiments: [
          { __typename: 'Experiment', id: '1', name: 'default', runCount: 3 },
          { __typename: 'Experiment', id: '2', name: 'tuning', runCount: 11 },
        ],
      };
    case 'Runs':
      return {
        runs: {
          __typename: 'RunConnection',
          totalCount: RUNS.length + 1,
          edges: [
            ...RUNS.map((r) => runRow(r)),
            { ...tuning, children: tuning.children.map((c) => ({ __typename: 'Run', id: c.id })) },
          ].map((node) => ({ __typename: 'RunEdge', node })),
        },
      };
    case 'RunDetail': {
      const run = RUNS.find((r) => r.id === variables['id']);
      if (!run) return { run: null };
      const key = String(variables['key']);
      const history = metricsOf(run)[key] ?? [];
      const miss = Math.round((1 - run.acc) * 20);
      return {
        run: {
          ...runRow(run),
          metricKeys: Object.keys(metricsOf(run)),
          history: history.map((value, step) => metric(key, value, step)),
          confusionMatrix: {
            __typename: 'ConfusionMatrix',
            labels: LABELS,
            counts: [
              [20 - miss, Math.ceil(miss / 2), Math.floor(miss / 2)],
              [1, 20 - miss, miss - 1],
              [Math.floor(miss / 2), Math.ceil(miss / 2), 20 - miss],
            ],
          },
          classMetrics: LABELS.map((label, i) => ({
            __typename: 'ClassMetrics',
            label,
            precision: run.acc - i * 0.02,
            recall: run.acc - 0.01 + i * 0.01,
            f1: run.acc - 0.01,
            support: 20,
          })),
          registeredVersions: [],
          tags: [],
        },
      };
    }
    case 'TuningRun':
      return { run: tuning };
    case 'RegisteredModels':
      return {
        registeredModels: [
          {
            __typename: 'RegisteredModel',
            name: 'pets',
            description: 'cat / dog / wild faces, 64×64',
            aliases: [{ __typename: 'Alias', alias: 'champion', version: 2 }],
            champion: { __typename: 'ModelVersion', name: 'pets', version: 2 },
            latestVersions: [
              { __typename: 'ModelVersion', name: 'pets', version: 2, stage: 'PRODUCTION' },
              { __typename: 'ModelVersion', name: 'pets', version: 3, stage: 'STAGING' },
            ],
          },
        ],
      };
    case 'RegisteredModel': {
      const versions = [
        version(3, 'STAGING', ['challenger'], 0.948, 0.162),
        version(2, 'PRODUCTION', ['champion'], 0.912, 0.241),
        version(1, 'ARCHIVED', [], 0.861, 0.352),
      ];
      return {
        registeredModel: {
          __typename: 'RegisteredModel',
          name: 'pets',
          description: 'cat / dog / wild faces, 64×64',
          champion: versions[1],
          versions: {
            __typename: 'ModelVersionConnection',
            totalCount: 3,
            edges: versions.map((node) => ({ __typename: 'ModelVersionEdge', node })),
          },
          transitions: [
            { v: 1, from: 'NONE', to: 'PRODUCTION', alias: 'champion', c: 'first model' },
            {
              v: 2,
              from: 'NONE',
              to: 'PRODUCTION',
              alias: 'champion',
              c: 'beats v1 by 5 points on val',
            },
            { v: 1, from: 'PRODUCTION', to: 'ARCHIVED', alias: null, c: null },
            { v: 3, from: 'NONE', to: 'STAGING', alias: 'challenger', c: 'mobilenet head' },
          ].map((t, i) => ({
            __typename: 'StageTransition',
            id: String(i + 1),
            version: t.v,
            fromStage: t.from,
            toStage: t.to,
            alias: t.alias,
            user: 'ana',
            comment: t.c,
            at: String(T0 + i * 86_400_000),
          })),
        },
      };
    }
    case 'TrainingOptions':
      return {
        modelPlugins: [
          {
            __typename: 'ModelPluginInfo',
            name: 'menagerie:cnn',
            version: '0.1.0',
            description: 'Keras-style Sequential CNN, the reference baseline.',
            space: [
              {
                name: 'filters',
                type: 'choice',
                min: null,
                max: null,
                step: null,
                sampling: null,
                values: ['16', '32', '64'],
                default: '32',
              },
              {
                name: 'conv_blocks',
                type: 'int',
                min: 1,
                max: 4,
                step: 1,
                sampling: 'linear',
                values: null,
                default: '3',
              },
              {
                name: 'dense_units',
                type: 'int',
                min: 32,
                max: 256,
                step: 32,
                sampling: 'linear',
                values: null,
                default: '128',
              },
              {
                name: 'dropout',
                type: 'float',
                min: 0,
                max: 0.6,
                step: null,
                sampling: 'linear',
                values: null,
                default: '0.3',
              },
              {
                name: 'learning_rate',
                type: 'float',
                min: 0.0001,
                max: 0.01,
                step: null,
                sampling: 'log',
                values: null,
                default: '0.001',
              },
              {
                name: 'batch_norm',
                type: 'boolean',
                min: null,
                max: null,
                step: null,
                sampling: null,
                values: null,
                default: 'true',
              },
              {
                name: 'input_size',
                type: 'fixed',
                min: null,
                max: null,
                step: null,
                sampling: null,
                values: null,
                default: '64',
              },
            ].map((s) => ({ __typename: 'HpSpec', ...s })),
          },
        ],
        tuners: ['random', 'grid', 'hyperband', 'bayesian'].map((name) => ({
          __typename: 'TunerInfo',
          name: `menagerie:${name}`,
          description: null,
        })),
      };
    default:
      return undefined;
  }
}

/** The root field each stubbed operation needs from the real schema. */
export const PLANNED_ROOT_FIELD: Readonly<Record<string, string>> = {
  Serving: 'serving',
  Predict: 'predict',
  ImageSimilar: 'image.similar',
  Experiments: 'experiments',
  Runs: 'runs',
  RunDetail: 'run',
  TuningRun: 'run',
  RegisteredModels: 'registeredModels',
  RegisteredModel: 'registeredModel',
  TrainingOptions: 'modelPlugins',
};
