import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { OpenDatabase } from '../../data/database.js';
import type { ModelRegistry } from '../../registry/model-registry.js';
import { parseModelUri } from '../../registry/model-uri.js';
import { expectCode, openMemoryRegistry, seed } from '../helpers/registry.js';
import { forEachDatabase } from '../helpers/backends.js';

forEachDatabase((backend) => {
  let database: OpenDatabase;
  let registry: ModelRegistry;

  beforeEach(async () => {
    ({ database, registry } = await openMemoryRegistry(backend));
  });
  afterEach(() => database.close());

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
      await seed(registry, {
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
      await seed(registry, { stages: ['Production'], champion: 1 });
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
});
