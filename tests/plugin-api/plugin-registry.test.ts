import { describe, expect, it } from 'vitest';
import { builtinPlugins } from '../../plugins/builtins.js';
import { definePlugin, PLUGIN_API_VERSION } from '../../plugin-api/plugin.js';
import { createPluginRegistry } from '../../plugin-api/plugin-registry.js';
import { referenceBlobStore } from '../../data/blob-store.js';

const store = definePlugin({
  name: 'test-store',
  kind: 'storage',
  createStore: () => referenceBlobStore(),
});

describe('plugin registry', () => {
  it('registers built-ins through the public API', () => {
    const registry = createPluginRegistry(builtinPlugins());
    expect(registry.get('storage', 'menagerie:local-fs').name).toBe('menagerie:local-fs');
  });

  it.each([
    [null, /should be an object, got null/],
    [{ kind: 'storage', createStore() {} }, /non-empty string name/],
    [{ name: 'x', kind: 'painter' }, /kind "painter", expected one of/],
    [{ name: 'x', kind: 'storage' }, /missing hook\(s\): createStore/],
    [{ ...store, apiVersion: PLUGIN_API_VERSION + 1 }, /written for plugin API 2/],
  ])('refuses %j with PLUGIN_INVALID', (candidate, message) => {
    expect(() => createPluginRegistry([candidate])).toThrow(message);
    expect(() => createPluginRegistry([candidate])).toThrow(
      expect.objectContaining({ code: 'PLUGIN_INVALID' }),
    );
  });

  it('refuses a second plugin of the same kind and name', () => {
    expect(() => createPluginRegistry([store, { ...store }])).toThrow(
      expect.objectContaining({ code: 'PLUGIN_NAME_CLASH' }),
    );
  });

  it('names what is registered when a plugin is missing', () => {
    const registry = createPluginRegistry([store]);
    expect(() => registry.get('storage', 'nope')).toThrow(
      /no storage plugin 'nope' \(registered: test-store\)/,
    );
  });
});
