import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { OpenDatabase } from '../../data/database.js';
import type { ModelRegistry } from '../../registry/model-registry.js';
import {
  expectCode,
  expectDeleteRule,
  openMemoryRegistry,
  seed,
  type DeleteRule,
} from '../helpers/registry.js';
import { forEachDatabase } from '../helpers/backends.js';

forEachDatabase((backend) => {
  let database: OpenDatabase;
  let registry: ModelRegistry;

  beforeEach(async () => {
    ({ database, registry } = await openMemoryRegistry(backend));
  });
  afterEach(() => database.close());

  describe('registered models', () => {
    it('refuses duplicate and malformed names, renames keeping versions and aliases', async () => {
      await registry.createRegisteredModel('faces', { description: 'pets', tags: { a: '1' } });
      await expectCode(registry.createRegisteredModel('faces'), 'MODEL_EXISTS');
      for (const bad of ['', ' faces', 'a/b', 'a@b', 'x'.repeat(256)])
        await expectCode(registry.createRegisteredModel(bad), 'MODEL_NAME_INVALID');
      await seed(registry, { stages: ['Production'], champion: 1 });
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

    it('pages models by name with a LIKE filter', async () => {
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
      // Case-insensitive on both backends (PostgreSQL's LIKE alone minds case).
      const upper = await registry.listRegisteredModels({ nameLike: 'CATS-_' });
      expect(upper.items.map((m) => m.name)).toEqual(['cats-a', 'cats-b', 'cats-c']);
    });

    it('answers a name taken by a concurrent creator or renamer with MODEL_EXISTS', async () => {
      await registry.createRegisteredModel('a');
      const results = await Promise.allSettled([
        registry.createRegisteredModel('b'),
        registry.renameRegisteredModel('a', 'b'),
        registry.createRegisteredModel('b'),
      ]);
      const refused = results.filter((r) => r.status === 'rejected');
      expect(refused).toHaveLength(2);
      for (const r of refused) expect(r.reason).toMatchObject({ code: 'MODEL_EXISTS' });
    });
  });

  describe('delete rules', () => {
    const rows: DeleteRule[] = [
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
    it.each(rows)('%s', (...rule) => expectDeleteRule({ database, registry }, rule));
  });
});
