import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { OpenDatabase } from '../../data/database.js';
import type { ModelRegistry } from '../../registry/model-registry.js';
import { expectRule, openMemoryRegistry, seed, type Rule } from '../helpers/registry.js';
import { forEachDatabase } from '../helpers/backends.js';

forEachDatabase((backend) => {
  let database: OpenDatabase;
  let registry: ModelRegistry;

  beforeEach(async () => {
    ({ database, registry } = await openMemoryRegistry(backend));
  });
  afterEach(() => database.close());

  // "MLflow" rows behave as MLflow's registry does; "fix" rows are where Menagerie is stricter.
  const ALIAS_RULES: Rule[] = [
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
    ).map(([alias, who]): Rule => [
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
  ];

  describe('alias rules (MLflow semantics, and where Menagerie is stricter)', () => {
    it.each(ALIAS_RULES)('%s', (...rule) => expectRule(registry, rule));

    it('aliases are unique per model, not across models', async () => {
      await seed(registry, { stages: ['None'], aliases: { challenger: 1 } }, 'a');
      await seed(registry, { stages: ['None', 'None'], aliases: { challenger: 2 } }, 'b');
      expect((await registry.getVersionByAlias('a', 'challenger')).version).toBe(1);
      expect((await registry.getVersionByAlias('b', 'challenger')).version).toBe(2);
    });
  });
});
