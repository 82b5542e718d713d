import { spawn } from 'node:child_process';
import path from 'node:path';
import { afterAll, afterEach, beforeEach, describe, expect, it } from 'vitest';
import { openDatabase, type OpenDatabase } from '../../data/database.js';
import { isMenagerieError, type ErrorCode } from '../../core/errors.js';
import type { ModelStage } from '../../data/tables.js';
import {
  createModelRegistry,
  type ModelRegistry,
  type NewModelVersion,
} from '../../registry/model-registry.js';
import { parseModelUri } from '../../registry/model-uri.js';
import { runCli } from '../helpers/cli.js';
import { REPO_ROOT, tempDir } from '../helpers/fixtures.js';
import { saveTinyModel } from '../helpers/models.js';

const SPEC = { size: 32, channels: 3, fit: 'fill', scale: 1 / 255, offset: 0 } as const;

function versionInput(name = 'faces', extra: Partial<NewModelVersion> = {}): NewModelVersion {
  return {
    name,
    source: 'file:///artifacts/model',
    runId: 'a'.repeat(32),
    plugin: 'menagerie:cnn',
    pluginVersion: '1.0.0',
    inputSpec: SPEC,
    labels: ['cat', 'dog', 'wild'],
    metrics: { val_accuracy: 0.93 },
    ...extra,
  };
}

async function expectCode(promise: Promise<unknown>, code: ErrorCode): Promise<void> {
  const error = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(isMenagerieError(error) ? error.code : error).toBe(code);
}

let database: OpenDatabase;
let registry: ModelRegistry;
let clock = 1_700_000_000_000;

beforeEach(async () => {
  database = await openDatabase(':memory:');
  registry = createModelRegistry({ db: database.db, user: 'tester', now: () => ++clock });
});
afterEach(() => database.close());

/** A starting state: each version's stage (READY unless `status` says) and its aliases. */
interface Start {
  stages: ModelStage[];
  champion?: number;
  aliases?: Record<string, number>;
  status?: Record<number, 'PENDING' | 'FAILED'>;
}

async function seed(start: Start, name = 'faces'): Promise<void> {
  for (let i = 1; i <= start.stages.length; i++) {
    await registry.createModelVersion(versionInput(name));
    const status = start.status?.[i];
    if (status !== 'PENDING') await registry.setVersionStatus(name, i, status ?? 'READY');
  }
  if (start.champion) await registry.promoteChampion(name, start.champion);
  for (const [i, stage] of start.stages.entries()) {
    const version = i + 1;
    if (version !== start.champion && stage !== 'None')
      await registry.transitionStage(name, version, stage);
  }
  for (const [alias, version] of Object.entries(start.aliases ?? {}))
    await registry.setAlias(name, alias, version);
}

async function state(name = 'faces') {
  const versions = (await registry.listVersions(name)).items.reverse();
  return {
    stages: versions.map((v) => v.stage),
    aliases: (await registry.getRegisteredModel(name)).aliases,
  };
}

type Row = [
  label: string,
  start: Start,
  op: (r: ModelRegistry) => Promise<unknown>,
  expected: { stages: ModelStage[]; aliases?: Record<string, number> } | ErrorCode,
];

// "MLflow" rows behave as MLflow's registry does; "fix" rows are where Menagerie is stricter.
const STAGE_RULES: Row[] = [
  [
    'MLflow: None → Staging',
    { stages: ['None'] },
    (r) => r.transitionStage('faces', 1, 'Staging'),
    { stages: ['Staging'] },
  ],
  [
    'MLflow: stage names match in any case',
    { stages: ['None'] },
    (r) => r.transitionStage('faces', 1, 'pRoDuCtIoN'),
    { stages: ['Production'] },
  ],
  [
    'MLflow: an unknown stage is refused',
    { stages: ['None'] },
    (r) => r.transitionStage('faces', 1, 'Prod'),
    'MODEL_STAGE_INVALID',
  ],
  [
    'MLflow: without archiveExisting two versions may share Production',
    { stages: ['Production', 'Staging'] },
    (r) => r.transitionStage('faces', 2, 'Production'),
    { stages: ['Production', 'Production'] },
  ],
  [
    'MLflow: archiveExisting archives every other holder of the target stage',
    { stages: ['Production', 'Production', 'Staging', 'Staging'] },
    (r) => r.transitionStage('faces', 3, 'Production', { archiveExisting: true }),
    { stages: ['Archived', 'Archived', 'Production', 'Staging'] },
  ],
  [
    'MLflow: archiveExisting to Staging leaves Production alone',
    { stages: ['Production', 'Staging', 'None'] },
    (r) => r.transitionStage('faces', 3, 'Staging', { archiveExisting: true }),
    { stages: ['Production', 'Archived', 'Staging'] },
  ],
  [
    'MLflow: archiveExisting is refused for Archived',
    { stages: ['Production', 'None'] },
    (r) => r.transitionStage('faces', 2, 'Archived', { archiveExisting: true }),
    'MODEL_STAGE_INVALID',
  ],
  [
    'MLflow: archiveExisting is refused for None',
    { stages: ['Staging'] },
    (r) => r.transitionStage('faces', 1, 'None', { archiveExisting: true }),
    'MODEL_STAGE_INVALID',
  ],
  [
    'MLflow: moving to the current stage changes nothing',
    { stages: ['Staging'] },
    (r) => r.transitionStage('faces', 1, 'Staging'),
    { stages: ['Staging'] },
  ],
  [
    'MLflow: Archived → None is allowed',
    { stages: ['Archived'] },
    (r) => r.transitionStage('faces', 1, 'None'),
    { stages: ['None'] },
  ],
  [
    'MLflow: a missing version',
    { stages: ['None'] },
    (r) => r.transitionStage('faces', 9, 'Staging'),
    'MODEL_VERSION_NOT_FOUND',
  ],
  [
    'MLflow: a missing model',
    { stages: ['None'] },
    (r) => r.transitionStage('nope', 1, 'Staging'),
    'MODEL_NOT_FOUND',
  ],
  [
    'fix: a PENDING version cannot be staged',
    { stages: ['None'], status: { 1: 'PENDING' } },
    (r) => r.transitionStage('faces', 1, 'Staging'),
    'MODEL_VERSION_NOT_READY',
  ],
  [
    'fix: a FAILED version cannot reach Production',
    { stages: ['None'], status: { 1: 'FAILED' } },
    (r) => r.transitionStage('faces', 1, 'Production'),
    'MODEL_VERSION_NOT_READY',
  ],
  [
    'fix: a FAILED version may still be archived',
    { stages: ['None'], status: { 1: 'FAILED' } },
    (r) => r.transitionStage('faces', 1, 'Archived'),
    { stages: ['Archived'] },
  ],
  [
    'fix: the champion cannot leave Production',
    { stages: ['Production'], champion: 1 },
    (r) => r.transitionStage('faces', 1, 'Archived'),
    'MODEL_VERSION_IN_USE',
  ],
  [
    "fix: archiveExisting may not archive the champion (that is promoteChampion's job)",
    { stages: ['Production', 'Staging'], champion: 1 },
    (r) => r.transitionStage('faces', 2, 'Production', { archiveExisting: true }),
    'MODEL_VERSION_IN_USE',
  ],
  [
    'MLflow: beside the champion, another version may join Production without archiving',
    { stages: ['Production', 'Staging'], champion: 1 },
    (r) => r.transitionStage('faces', 2, 'Production'),
    { stages: ['Production', 'Production'], aliases: { champion: 1 } },
  ],
];

const ALIAS_RULES: Row[] = [
  [
    'MLflow: set an alias',
    { stages: ['None', 'None'] },
    (r) => r.setAlias('faces', 'challenger', 2),
    { stages: ['None', 'None'], aliases: { challenger: 2 } },
  ],
  [
    'MLflow: setting an existing alias moves it (unique per model)',
    { stages: ['None', 'None'], aliases: { challenger: 1 } },
    (r) => r.setAlias('faces', 'challenger', 2),
    { stages: ['None', 'None'], aliases: { challenger: 2 } },
  ],
  [
    'MLflow: one version may carry several aliases',
    { stages: ['None'], aliases: { a: 1 } },
    (r) => r.setAlias('faces', 'b-2_x', 1),
    { stages: ['None'], aliases: { a: 1, 'b-2_x': 1 } },
  ],
  ...(
    [
      ['latest', 'MLflow'],
      ['LaTeSt', 'MLflow'],
      ['v3', 'MLflow'],
      ['V12', 'MLflow'],
      ['3', 'fix'],
      ['', 'MLflow'],
      ['two words', 'MLflow'],
      ['a/b', 'MLflow'],
      ['x'.repeat(256), 'MLflow'],
      ['champion', 'fix'],
    ] as const
  ).map(([alias, who]): Row => [
    `${who}: alias ${JSON.stringify(alias.slice(0, 12))} is refused`,
    { stages: ['None'] },
    (r) => r.setAlias('faces', alias, 1),
    'MODEL_ALIAS_INVALID',
  ]),
  [
    'MLflow: an alias on a missing version',
    { stages: ['None'] },
    (r) => r.setAlias('faces', 'challenger', 2),
    'MODEL_VERSION_NOT_FOUND',
  ],
  [
    'fix: an alias on a PENDING version',
    { stages: ['None'], status: { 1: 'PENDING' } },
    (r) => r.setAlias('faces', 'challenger', 1),
    'MODEL_VERSION_NOT_READY',
  ],
  [
    'MLflow: delete an alias',
    { stages: ['None'], aliases: { challenger: 1 } },
    (r) => r.deleteAlias('faces', 'challenger'),
    { stages: ['None'], aliases: {} },
  ],
  [
    'MLflow: delete a missing alias',
    { stages: ['None'] },
    (r) => r.deleteAlias('faces', 'challenger'),
    'MODEL_ALIAS_NOT_FOUND',
  ],
  [
    'MLflow: look up a missing alias',
    { stages: ['None'] },
    (r) => r.getVersionByAlias('faces', 'challenger'),
    'MODEL_ALIAS_NOT_FOUND',
  ],
  [
    'fix: champion can be removed explicitly; the version stays in Production',
    { stages: ['Production'], champion: 1 },
    (r) => r.deleteAlias('faces', 'champion'),
    { stages: ['Production'], aliases: {} },
  ],
  [
    'fix: promoteChampion moves alias and stage and archives the old holder at once',
    { stages: ['Production', 'Staging'], champion: 1, aliases: { challenger: 2 } },
    (r) => r.promoteChampion('faces', 2),
    { stages: ['Archived', 'Production'], aliases: { challenger: 2, champion: 2 } },
  ],
  [
    'fix: promoteChampion archives every other Production version',
    { stages: ['Production', 'Production', 'None', 'Staging'], champion: 1 },
    (r) => r.promoteChampion('faces', 3),
    { stages: ['Archived', 'Archived', 'Production', 'Staging'], aliases: { champion: 3 } },
  ],
  [
    'fix: promoteChampion refuses a FAILED version',
    { stages: ['Production', 'None'], champion: 1, status: { 2: 'FAILED' } },
    (r) => r.promoteChampion('faces', 2),
    'MODEL_VERSION_NOT_READY',
  ],
  [
    'fix: promoteChampion on the champion changes nothing',
    { stages: ['Production'], champion: 1 },
    (r) => r.promoteChampion('faces', 1),
    { stages: ['Production'], aliases: { champion: 1 } },
  ],
];

describe('stage and alias rules (MLflow semantics, and where Menagerie is stricter)', () => {
  it.each([...STAGE_RULES, ...ALIAS_RULES])('%s', async (_label, start, op, expected) => {
    await seed(start);
    const before = await state();
    const historyBefore = (await registry.getTransitions('faces')).length;
    if (typeof expected === 'string') {
      await expectCode(op(registry), expected);
      expect(await state(), 'a refused change leaves everything as it was').toEqual(before);
      expect(await registry.getTransitions('faces')).toHaveLength(historyBefore);
    } else {
      await op(registry);
      expect(await state()).toEqual({ aliases: {}, ...expected });
    }
  });

  it('aliases are unique per model, not across models', async () => {
    await seed({ stages: ['None'], aliases: { challenger: 1 } }, 'a');
    await seed({ stages: ['None', 'None'], aliases: { challenger: 2 } }, 'b');
    expect((await registry.getVersionByAlias('a', 'challenger')).version).toBe(1);
    expect((await registry.getVersionByAlias('b', 'challenger')).version).toBe(2);
  });
});

describe('registered models and versions', () => {
  it('numbers versions per model from 1, creating the model on first use, PENDING until READY', async () => {
    const v1 = await registry.createModelVersion(versionInput('faces', { tags: { team: 'x' } }));
    expect(v1).toMatchObject({
      name: 'faces',
      version: 1,
      status: 'PENDING',
      stage: 'None',
      runId: 'a'.repeat(32),
      plugin: 'menagerie:cnn',
      pluginVersion: '1.0.0',
      inputSpec: SPEC,
      labels: ['cat', 'dog', 'wild'],
      metrics: { val_accuracy: 0.93 },
      tags: { team: 'x' },
      createdBy: 'tester',
    });
    expect((await registry.createModelVersion(versionInput('faces'))).version).toBe(2);
    expect((await registry.createModelVersion(versionInput('other'))).version).toBe(1);
    const failed = await registry.setVersionStatus('faces', 2, 'FAILED', 'weights missing');
    expect(failed).toMatchObject({ status: 'FAILED', statusMessage: 'weights missing' });
    expect((await registry.setVersionStatus('faces', 1, 'READY')).status).toBe('READY');
    expect(await registry.getRegisteredModel('faces')).toMatchObject({ latestVersion: 2 });
  });

  it('refuses duplicate and malformed names, renames keeping versions and aliases', async () => {
    await registry.createRegisteredModel('faces', { description: 'pets', tags: { a: '1' } });
    await expectCode(registry.createRegisteredModel('faces'), 'MODEL_EXISTS');
    for (const bad of ['', ' faces', 'a/b', 'a@b', 'x'.repeat(256)])
      await expectCode(registry.createRegisteredModel(bad), 'MODEL_NAME_INVALID');
    await seed({ stages: ['Production'], champion: 1 });
    await registry.createRegisteredModel('taken');
    await expectCode(registry.renameRegisteredModel('faces', 'taken'), 'MODEL_EXISTS');
    const renamed = await registry.renameRegisteredModel('faces', 'pets');
    expect(renamed).toMatchObject({ name: 'pets', description: 'pets', tags: { a: '1' } });
    expect(renamed.aliases).toEqual({ champion: 1 });
    expect((await registry.resolveModelUri('models:/pets@champion')).name).toBe('pets');
    await expectCode(registry.getRegisteredModel('faces'), 'MODEL_NOT_FOUND');
    await registry.updateRegisteredModel('pets', { description: 'cats and dogs' });
    await registry.setRegisteredModelTag('pets', 'a', '2');
    expect(await registry.deleteRegisteredModelTag('pets', 'missing')).toBe(false);
    expect(await registry.getRegisteredModel('pets')).toMatchObject({
      description: 'cats and dogs',
      tags: { a: '2' },
    });
  });

  it('pages models by name with a LIKE filter, and versions newest first', async () => {
    for (const name of ['cats-b', 'dogs', 'cats-a', 'cats-c'])
      await registry.createRegisteredModel(name);
    const first = await registry.listRegisteredModels({ nameLike: 'cats%', first: 2 });
    expect(first.items.map((m) => m.name)).toEqual(['cats-a', 'cats-b']);
    const second = await registry.listRegisteredModels({
      nameLike: 'cats%',
      first: 2,
      after: first.endCursor,
    });
    expect(second).toMatchObject({ hasNextPage: false, endCursor: null });
    expect(second.items.map((m) => m.name)).toEqual(['cats-c']);
    await expectCode(registry.listRegisteredModels({ after: 'bogus' }), 'CURSOR_INVALID');

    await seed({ stages: ['None', 'Staging', 'None', 'Staging', 'None'] });
    const page = await registry.listVersions('faces', { first: 2 });
    expect(page.items.map((v) => v.version)).toEqual([5, 4]);
    const next = await registry.listVersions('faces', { first: 2, after: page.endCursor });
    expect(next.items.map((v) => v.version)).toEqual([3, 2]);
    const staged = await registry.listVersions('faces', { stage: 'staging' });
    expect(staged.items.map((v) => v.version)).toEqual([4, 2]);
  });

  it('keeps version numbers after a deletion and the deleted version in the history', async () => {
    await seed({ stages: ['None', 'None'] });
    await registry.deleteModelVersion('faces', 2, { comment: 'bad data' });
    expect((await registry.createModelVersion(versionInput())).version).toBe(3);
    await expectCode(registry.getModelVersion('faces', 2), 'MODEL_VERSION_NOT_FOUND');
    expect((await registry.getTransitions('faces', 2)).map((t) => t.action)).toEqual([
      'create',
      'delete',
    ]);
  });
});

describe('delete rules', () => {
  const rows: [string, Start, (r: ModelRegistry) => Promise<unknown>, ErrorCode | null][] = [
    ['a plain version', { stages: ['None'] }, (r) => r.deleteModelVersion('faces', 1), null],
    [
      'the champion, even forced',
      { stages: ['Production'], champion: 1 },
      (r) => r.deleteModelVersion('faces', 1, { force: true }),
      'MODEL_VERSION_IN_USE',
    ],
    [
      'an aliased version',
      { stages: ['None'], aliases: { challenger: 1 } },
      (r) => r.deleteModelVersion('faces', 1),
      'MODEL_VERSION_IN_USE',
    ],
    [
      'an aliased version, forced (its aliases go, as in MLflow)',
      { stages: ['None'], aliases: { challenger: 1 } },
      (r) => r.deleteModelVersion('faces', 1, { force: true }),
      null,
    ],
    [
      'a Production version',
      { stages: ['Production'] },
      (r) => r.deleteModelVersion('faces', 1),
      'MODEL_VERSION_IN_USE',
    ],
    [
      'a model with a champion',
      { stages: ['Production'], champion: 1 },
      (r) => r.deleteRegisteredModel('faces'),
      'MODEL_IN_USE',
    ],
    [
      'a model with a champion, forced',
      { stages: ['Production'], champion: 1 },
      (r) => r.deleteRegisteredModel('faces', { force: true }),
      null,
    ],
    [
      'a model with nothing serving',
      { stages: ['Staging', 'Archived'] },
      (r) => r.deleteRegisteredModel('faces'),
      null,
    ],
  ];
  it.each(rows)('%s', async (_label, start, op, code) => {
    await seed(start);
    if (code) await expectCode(op(registry), code);
    else await op(registry);
    const left = await database.db
      .selectFrom('model_aliases')
      .select(['alias', 'version'])
      .execute();
    if (!code) expect(left.filter((a) => a.alias !== 'champion')).toEqual([]);
  });
});

describe('promoteChampion', () => {
  it('records one change: alias move, new Production, old Production archived; who, when, why', async () => {
    await seed({ stages: ['Production', 'Staging', 'Production'], champion: 1 });
    const before = (await registry.getTransitions('faces')).length;
    const result = await registry.promoteChampion('faces', 2, { user: 'ana', comment: 'better' });
    expect(result).toMatchObject({ previousChampion: 1, archived: [1, 3] });
    expect(result.version).toMatchObject({ stage: 'Production', aliases: ['champion'] });
    const change = (await registry.getTransitions('faces')).slice(before);
    expect(new Set(change.map((t) => t.changeId)).size).toBe(1);
    expect(new Set(change.map((t) => t.at)).size).toBe(1);
    expect(
      change.map((t) => [
        t.version,
        t.action,
        t.fromStage,
        t.toStage,
        t.alias,
        t.previousVersion,
        t.user,
        t.comment,
      ]),
    ).toEqual([
      [2, 'alias_set', null, 'Production', 'champion', 1, 'ana', 'better'],
      [2, 'stage', 'Staging', 'Production', null, null, 'ana', 'better'],
      [1, 'stage', 'Production', 'Archived', null, null, 'ana', 'better'],
      [3, 'stage', 'Production', 'Archived', null, null, 'ana', 'better'],
    ]);
    await registry.promoteChampion('faces', 2);
    expect(await registry.getTransitions('faces')).toHaveLength(before + 4);
  });

  it('is all or nothing: a failure while archiving leaves alias and stages untouched', async () => {
    await seed({ stages: ['Production', 'Staging'], champion: 1 });
    database.sqlite.exec(`create trigger no_archive before update of stage on model_versions
      when new.stage = 'Archived' begin select raise(abort, 'disk on fire'); end`);
    await expect(registry.promoteChampion('faces', 2)).rejects.toThrow(/disk on fire/);
    expect(await state()).toEqual({ stages: ['Production', 'Staging'], aliases: { champion: 1 } });
  });

  it('history lists every stage move and alias change with the registry user by default', async () => {
    await seed({ stages: ['None', 'None'] });
    await registry.transitionStage('faces', 1, 'Staging', { comment: 'try it' });
    await registry.setAlias('faces', 'challenger', 1);
    await registry.deleteAlias('faces', 'challenger', { user: 'bo' });
    const history = await registry.getTransitions('faces', 1);
    expect(
      history.map((t) => [t.action, t.fromStage, t.toStage, t.alias, t.user, t.comment]),
    ).toEqual([
      ['create', null, 'None', null, 'tester', null],
      ['stage', 'None', 'Staging', null, 'tester', 'try it'],
      ['alias_set', null, 'Staging', 'challenger', 'tester', null],
      ['alias_delete', null, null, 'challenger', 'bo', null],
    ]);
    expect(history.every((t, i) => i === 0 || t.at > history[i - 1]!.at)).toBe(true);
  });
});

describe('model URIs', () => {
  it.each([
    ['models:/faces/2', 2],
    ['models:/faces@champion', 1],
    ['models:/faces@challenger', 3],
    ['models:/faces/Production', 1],
    ['models:/faces/production', 1],
    ['models:/faces/Staging', 3],
    ['models:/faces/latest', 3],
  ])('%s resolves to version %i', async (uri, version) => {
    // v4 is PENDING: `latest` means the newest READY version.
    await seed({
      stages: ['Production', 'Archived', 'Staging', 'None'],
      champion: 1,
      aliases: { challenger: 3 },
      status: { 4: 'PENDING' },
    });
    expect((await registry.resolveModelUri(uri)).version).toBe(version);
  });

  it.each([
    ['faces/1', 'MODEL_URI_INVALID'],
    ['models:faces/1', 'MODEL_URI_INVALID'],
    ['models://faces/1', 'MODEL_URI_INVALID'],
    ['models:/faces', 'MODEL_URI_INVALID'],
    ['models:/faces/', 'MODEL_URI_INVALID'],
    ['models:/faces/1/2', 'MODEL_URI_INVALID'],
    ['models:/faces/0', 'MODEL_URI_INVALID'],
    ['models:/faces/Prod', 'MODEL_URI_INVALID'],
    ['models:/faces@', 'MODEL_URI_INVALID'],
    ['models:/faces@latest', 'MODEL_URI_INVALID'],
    ['models:/@champion', 'MODEL_URI_INVALID'],
    ['models:/faces/9', 'MODEL_VERSION_NOT_FOUND'],
    ['models:/faces@nobody', 'MODEL_ALIAS_NOT_FOUND'],
    ['models:/faces/Staging', 'MODEL_VERSION_NOT_FOUND'],
    ['models:/ghost/1', 'MODEL_NOT_FOUND'],
  ] as const)('%s fails with %s', async (uri, code) => {
    await seed({ stages: ['Production'], champion: 1 });
    await expectCode(registry.resolveModelUri(uri), code);
  });

  it('parses without a database', () => {
    expect(parseModelUri('models:/my model@champion')).toEqual({
      kind: 'alias',
      name: 'my model',
      alias: 'champion',
    });
  });
});

describe('concurrent promotions', () => {
  const { dir, remove } = tempDir('menagerie-registry-');
  afterAll(remove);

  function worker(file: string, seedValue: number, rounds: number) {
    return new Promise<{ promotions: number; violations: string[] }>((resolve, reject) => {
      const child = spawn(
        process.execPath,
        [
          '--import',
          'tsx',
          path.join(REPO_ROOT, 'tests/registry/promote-worker.ts'),
          file,
          'faces',
          '4',
          String(rounds),
          String(seedValue),
        ],
        { cwd: REPO_ROOT, stdio: ['ignore', 'pipe', 'pipe'] },
      );
      let out = '';
      let err = '';
      child.stdout.on('data', (d: Buffer) => (out += d.toString()));
      child.stderr.on('data', (d: Buffer) => (err += d.toString()));
      child.on('error', reject);
      child.on('exit', (code) =>
        code === 0
          ? resolve(JSON.parse(out.trim().split('\n').at(-1)!))
          : reject(new Error(`worker exited ${code}: ${err}`)),
      );
    });
  }

  it('two processes promoting on one file never leave 0 or 2 Production versions', async () => {
    const file = path.join(dir, 'menagerie.db');
    const shared = await openDatabase(file);
    const setup = createModelRegistry({ db: shared.db, user: 'setup' });
    for (let v = 1; v <= 4; v++) {
      await setup.createModelVersion(versionInput());
      await setup.setVersionStatus('faces', v, 'READY');
    }
    await setup.promoteChampion('faces', 1);
    await shared.close();

    const rounds = 300;
    const results = await Promise.all([worker(file, 7, rounds), worker(file, 11, rounds)]);
    for (const r of results) expect(r).toEqual({ promotions: rounds, violations: [] });

    const after = await openDatabase(file);
    const check = createModelRegistry({ db: after.db });
    const versions = (await check.listVersions('faces')).items;
    const production = versions.filter((v) => v.stage === 'Production');
    expect(production).toHaveLength(1);
    expect(production[0]!.aliases).toContain('champion');
    // Every change moved the alias from where the previous change had left it.
    const moves = (await check.getTransitions('faces')).filter((t) => t.alias === 'champion');
    for (let i = 1; i < moves.length; i++)
      expect(moves[i]!.previousVersion).toBe(moves[i - 1]!.version);
    const handovers = moves.filter((m, i) => i > 0 && m.user !== moves[i - 1]!.user).length;
    expect(handovers, 'the two processes really overlapped').toBeGreaterThan(0);
    await after.close();
  }, 120_000);
});

describe('menagerie models (CLI)', () => {
  const { dir, remove } = tempDir('menagerie-models-cli-');
  afterAll(remove);

  it('registers, promotes, aliases, resolves and shows history; refuses what it should', async () => {
    const dataDir = path.join(dir, 'data');
    const artifact = path.join(dir, 'artifact');
    await saveTinyModel(artifact, { labels: ['cat', 'dog'] });
    const cli = (...args: string[]) => runCli(['models', ...args, '--data-dir', dataDir]);
    for (const expected of [1, 2]) {
      const r = cli('register', '--name', 'faces', '--source', artifact, '--run', 'b'.repeat(32));
      expect(r.code, r.stderr).toBe(0);
      expect(r.stdout).toContain(`registered faces version ${expected} (None, READY)`);
    }
    expect(cli('promote', 'faces', '1').code).toBe(0);
    const promoted = cli('promote', 'faces', '2', '--comment', 'better val');
    expect(promoted.stdout).toMatch(/champion: faces version 2 \(Production, READY\) @champion/);
    expect(promoted.stdout).toMatch(/archived: v1/);
    expect(cli('alias', 'faces', 'challenger', '1').code).toBe(0);
    expect(cli('resolve', 'models:/faces@champion').stdout).toMatch(/^faces version 2 /);
    const show = cli('show', 'faces');
    expect(show.stdout).toMatch(/^2\s+Production\s+READY\s+@champion/m);
    expect(show.stdout).toMatch(/^1\s+Archived\s+READY\s+@challenger/m);
    const history = cli('history', 'faces');
    expect(history.stdout).toMatch(/^\S+ \S+\s+2\s+None → Production\s+\S+\s+better val$/m);
    expect(history.stdout).toContain('better val');
    expect(cli('list').stdout).toMatch(/^faces\s+2\s+@challenger=v1 @champion=v2/m);

    for (const [args, message] of [
      [['alias', 'faces', 'latest', '1'], /error MODEL_ALIAS_INVALID: 'latest' is reserved/],
      [['delete', 'faces', '2'], /error MODEL_VERSION_IN_USE: .*champion/],
      [['transition', 'faces', '2', 'Archived'], /error MODEL_VERSION_IN_USE/],
      [['resolve', 'faces/2'], /error MODEL_URI_INVALID/],
      [['register', '--name', 'faces', '--source', dir], /error MODEL_ARTIFACT_INVALID/],
    ] as const) {
      const r = cli(...args);
      expect(r.code, r.stdout).toBe(1);
      expect(r.stderr).toMatch(message);
    }
  }, 120_000);
});
