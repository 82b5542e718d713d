import { expect } from 'vitest';
import { isMenagerieError, type ErrorCode } from '../../core/errors.js';
import { openDatabase, type OpenDatabase } from '../../data/database.js';
import type { DatabaseBackend } from './backends.js';
import type { ModelStage } from '../../data/tables.js';
import {
  createModelRegistry,
  type ModelRegistry,
  type NewModelVersion,
} from '../../registry/model-registry.js';

export const SPEC = { size: 32, channels: 3, fit: 'fill', scale: 1 / 255, offset: 0 } as const;

export function versionInput(
  name = 'faces',
  extra: Partial<NewModelVersion> = {},
): NewModelVersion {
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

export async function expectCode(promise: Promise<unknown>, code: ErrorCode): Promise<void> {
  const error = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(isMenagerieError(error) ? error.code : error).toBe(code);
}

let clock = 1_700_000_000_000;

/**
 * A registry on a fresh database (in-memory SQLite, or `backend`'s), user 'tester', a clock
 * that ticks per call.
 */
export async function openMemoryRegistry(backend?: DatabaseBackend): Promise<{
  database: OpenDatabase;
  registry: ModelRegistry;
}> {
  const database = backend ? await backend.open() : await openDatabase(':memory:');
  return {
    database,
    registry: createModelRegistry({ db: database.db, user: 'tester', now: () => ++clock }),
  };
}

/** A starting state: each version's stage (READY unless `status` says) and its aliases. */
export interface Start {
  stages: ModelStage[];
  champion?: number;
  aliases?: Record<string, number>;
  status?: Record<number, 'PENDING' | 'FAILED'>;
}

export async function seed(registry: ModelRegistry, start: Start, name = 'faces'): Promise<void> {
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

export async function state(registry: ModelRegistry, name = 'faces') {
  const versions = (await registry.listVersions(name)).items.reverse();
  return {
    stages: versions.map((v) => v.stage),
    aliases: (await registry.getRegisteredModel(name)).aliases,
  };
}

/** One rule of the registry: from a start, an operation ends in a state or is refused. */
export type Rule = [
  label: string,
  start: Start,
  op: (r: ModelRegistry) => Promise<unknown>,
  expected: { stages: ModelStage[]; aliases?: Record<string, number> } | ErrorCode,
];

/** Checks a rule; a refused change must leave stages, aliases and history as they were. */
export async function expectRule(
  registry: ModelRegistry,
  [, start, op, expected]: Rule,
): Promise<void> {
  await seed(registry, start);
  const before = await state(registry);
  const historyBefore = (await registry.getTransitions('faces')).length;
  if (typeof expected === 'string') {
    await expectCode(op(registry), expected);
    expect(await state(registry), 'a refused change leaves everything as it was').toEqual(before);
    expect(await registry.getTransitions('faces')).toHaveLength(historyBefore);
  } else {
    await op(registry);
    expect(await state(registry)).toEqual({ aliases: {}, ...expected });
  }
}

/** A deletion from a start: refused with `code`, or done, leaving no alias but the champion. */
export type DeleteRule = [
  label: string,
  start: Start,
  op: (r: ModelRegistry) => Promise<unknown>,
  code: ErrorCode | null,
];

export async function expectDeleteRule(
  { database, registry }: { database: OpenDatabase; registry: ModelRegistry },
  [, start, op, code]: DeleteRule,
): Promise<void> {
  await seed(registry, start);
  if (code) await expectCode(op(registry), code);
  else await op(registry);
  const left = await database.db.selectFrom('model_aliases').select(['alias', 'version']).execute();
  if (!code) expect(left.filter((a) => a.alias !== 'champion')).toEqual([]);
}
