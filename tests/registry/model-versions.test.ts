import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { OpenDatabase } from '../../data/database.js';
import type { ModelRegistry } from '../../registry/model-registry.js';
import {
  expectCode,
  expectDeleteRule,
  openMemoryRegistry,
  seed,
  SPEC,
  versionInput,
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

  describe('model versions', () => {
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

    it('pages versions newest first, filtered by stage', async () => {
      await seed(registry, { stages: ['None', 'Staging', 'None', 'Staging', 'None'] });
      const page = await registry.listVersions('faces', { first: 2 });
      expect(page.items.map((v) => v.version)).toEqual([5, 4]);
      const next = await registry.listVersions('faces', { first: 2, after: page.endCursor });
      expect(next.items.map((v) => v.version)).toEqual([3, 2]);
      const staged = await registry.listVersions('faces', { stage: 'staging' });
      expect(staged.items.map((v) => v.version)).toEqual([4, 2]);
    });

    it('keeps version numbers after a deletion and the deleted version in the history', async () => {
      await seed(registry, { stages: ['None', 'None'] });
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
    const rows: DeleteRule[] = [
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
    ];
    it.each(rows)('%s', (...rule) => expectDeleteRule({ database, registry }, rule));
  });
});
