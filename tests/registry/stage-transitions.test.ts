import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { OpenDatabase } from '../../data/database.js';
import type { ModelRegistry } from '../../registry/model-registry.js';
import { expectRule, openMemoryRegistry, seed, state, type Rule } from '../helpers/registry.js';
import { forEachDatabase } from '../helpers/backends.js';

forEachDatabase((backend) => {
  let database: OpenDatabase;
  let registry: ModelRegistry;

  beforeEach(async () => {
    ({ database, registry } = await openMemoryRegistry(backend));
  });
  afterEach(() => database.close());

  // "MLflow" rows behave as MLflow's registry does; "fix" rows are where Menagerie is stricter.
  const STAGE_RULES: Rule[] = [
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

  const PROMOTION_RULES: Rule[] = [
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

  describe('stage rules (MLflow semantics, and where Menagerie is stricter)', () => {
    it.each(STAGE_RULES)('%s', (...rule) => expectRule(registry, rule));
  });

  describe('promoteChampion', () => {
    it.each(PROMOTION_RULES)('%s', (...rule) => expectRule(registry, rule));

    it('records one change: alias move, new Production, old Production archived; who, when, why', async () => {
      await seed(registry, { stages: ['Production', 'Staging', 'Production'], champion: 1 });
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
      await seed(registry, { stages: ['Production', 'Staging'], champion: 1 });
      if (database.backend === 'sqlite')
        database.sqlite.exec(`create trigger no_archive before update of stage on model_versions
        when new.stage = 'Archived' begin select raise(abort, 'disk on fire'); end`);
      else
        await database.pool.query(`
          create function no_archive() returns trigger language plpgsql as $$ begin
            if new.stage = 'Archived' then raise exception 'disk on fire'; end if; return new;
          end $$;
          create trigger no_archive before update of stage on model_versions
            for each row execute function no_archive();`);
      try {
        await expect(registry.promoteChampion('faces', 2)).rejects.toThrow(/disk on fire/);
        expect(await state(registry)).toEqual({
          stages: ['Production', 'Staging'],
          aliases: { champion: 1 },
        });
      } finally {
        // The PostgreSQL schema outlives this test.
        if (database.backend === 'postgres')
          await database.pool.query(
            'drop trigger no_archive on model_versions; drop function no_archive()',
          );
      }
    });
  });

  describe('the audit trail', () => {
    it('history lists every stage move and alias change with the registry user by default', async () => {
      await seed(registry, { stages: ['None', 'None'] });
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
});
