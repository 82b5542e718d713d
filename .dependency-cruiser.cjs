/**
 * The architecture, enforced: `npm test` runs this (`npm run lint:layers`). Every folder is a
 * layer and imports only from the layers listed before it; nothing imports in a circle.
 * Read top to bottom, this list is the table of contents of the code base.
 */
const LAYERS = [
  ['core', 'error catalogue (code → HTTP status), event hub, seeded random numbers, processes'],
  ['tf', 'TensorFlow on the native backend: loading, native ops, fast kernels, fused optimizers'],
  ['demo', 'the procedural cat/dog/wild face painter behind `menagerie demo-data`'],
  [
    'data',
    'database and migrations, blob store, images, ingest, preprocessing, dataset loader, caches',
  ],
  [
    'plugin-api',
    'the plugin contract every plugin codes against: kinds, hyperparameters, oracles, registry',
  ],
  ['training', 'trainer, evaluation, model artifacts, the tuning loop'],
  ['plugins', 'built-in plugins (models, storage, tuners, backbones) and loading third-party ones'],
  ['tracking', 'experiments, runs, params, metrics, tags, artifacts, run search, stale runs'],
  [
    'registry',
    'registered models, versions, stages, aliases, the audit trail, models:/ URIs, evaluations',
  ],
  [
    'jobs',
    'tracked training and tuning, the job runner (training, tuning, evaluation), the ingest service, job progress',
  ],
  [
    'serving',
    'inference engine, champion following, predictions, embeddings, similar images, evaluation',
  ],
  ['schema', 'the GraphQL schema: type-graphql types and resolvers (translate, never decide)'],
  ['server', 'HTTP: Apollo on Express, auth, limits, uploads, routes, WebSocket, playground'],
  ['cli', 'the `menagerie` command'],
];

const names = LAYERS.map(([name]) => name);
const layerRules = names.slice(0, -1).map((name, i) => ({
  name: `${name}-imports-only-below`,
  comment: `${name}/ (${LAYERS[i][1]}) may import only from ${names.slice(0, i).join(', ') || 'packages'}`,
  severity: 'error',
  from: { path: `^${name}/` },
  to: { path: `^(${names.slice(i + 1).join('|')})/` },
}));

module.exports = {
  forbidden: [
    {
      name: 'no-circular',
      comment: 'A cycle means two modules are one concept, or a contract is in the wrong layer.',
      severity: 'error',
      from: {},
      to: { circular: true },
    },
    ...layerRules,
    {
      name: 'product-never-imports-tests-or-benchmarks',
      severity: 'error',
      from: { path: `^(${names.join('|')})/` },
      to: { path: '^(tests|bench|client)/' },
    },
    {
      name: 'dev-services-stand-alone',
      comment:
        'dev-services/ starts PostgreSQL, Redis and the S3 gateway for development and tests; ' +
        'it knows nothing of the app, and the app nothing of it.',
      severity: 'error',
      from: { path: '^dev-services/' },
      to: { path: `^(${names.join('|')})/` },
    },
    {
      name: 'app-never-imports-dev-services',
      severity: 'error',
      from: { path: `^(${names.join('|')})/` },
      to: { path: '^dev-services/' },
    },
    {
      name: 'migrations-are-frozen',
      comment:
        'A migration imports nothing from the app, so a later change cannot rewrite history.',
      severity: 'error',
      from: { path: '^data/migrations/' },
      to: { path: `^(${names.join('|')})/`, pathNot: '^data/migrations/' },
    },
  ],
  options: {
    doNotFollow: { path: 'node_modules' },
    exclude: { path: '^(node_modules|client|server/playground/dist|bench/\\.venv)' },
    tsPreCompilationDeps: true,
    tsConfig: { fileName: 'tsconfig.json' },
    enhancedResolveOptions: {
      exportsFields: ['exports'],
      conditionNames: ['import', 'require', 'node', 'default'],
    },
  },
};

// For tests/core/layout.test.ts (not enumerable: dependency-cruiser refuses unknown keys).
Object.defineProperty(module.exports, 'LAYERS', { value: LAYERS });
