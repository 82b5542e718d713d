import { MenagerieError } from '../core/errors.js';
import { PLUGIN_API_VERSION, REQUIRED_HOOKS, type Plugin, type PluginKind } from './plugin.js';

/** Registered plugins of every kind. Built-ins register through it like any other. */
export interface PluginRegistry {
  /** Validates and adds a plugin; throws PLUGIN_INVALID or PLUGIN_NAME_CLASH. */
  register(plugin: unknown): void;
  /** The plugin of that kind and name; throws PLUGIN_NOT_FOUND listing what exists. */
  get<K extends PluginKind>(kind: K, name: string): Extract<Plugin, { kind: K }>;
  list(kind?: PluginKind): Plugin[];
}

export function createPluginRegistry(plugins: readonly unknown[] = []): PluginRegistry {
  const byKey = new Map<string, Plugin>();
  const registry: PluginRegistry = {
    register(candidate) {
      const plugin = validatePlugin(candidate);
      const key = `${plugin.kind}:${plugin.name}`;
      if (byKey.has(key)) {
        throw new MenagerieError(
          'PLUGIN_NAME_CLASH',
          `a ${plugin.kind} plugin named '${plugin.name}' is already registered`,
        );
      }
      byKey.set(key, plugin);
    },
    get(kind, name) {
      // Built-ins answer to their short name too: `cnn` is `menagerie:cnn`.
      const plugin = byKey.get(`${kind}:${name}`) ?? byKey.get(`${kind}:menagerie:${name}`);
      if (!plugin) {
        const known =
          registry
            .list(kind)
            .map((p) => p.name)
            .join(', ') || 'none';
        throw new MenagerieError(
          'PLUGIN_NOT_FOUND',
          `no ${kind} plugin '${name}' (registered: ${known})`,
        );
      }
      return plugin as Extract<Plugin, { kind: typeof kind }>;
    },
    list(kind) {
      return [...byKey.values()].filter((p) => kind === undefined || p.kind === kind);
    },
  };
  for (const plugin of plugins) registry.register(plugin);
  return registry;
}

function validatePlugin(candidate: unknown): Plugin {
  const what = (problem: string) => new MenagerieError('PLUGIN_INVALID', `plugin ${problem}`);
  if (typeof candidate !== 'object' || candidate === null) {
    throw what(`should be an object, got ${candidate === null ? 'null' : typeof candidate}`);
  }
  const plugin = candidate as Record<string, unknown>;
  if (typeof plugin.name !== 'string' || plugin.name.trim() === '') {
    throw what('should have a non-empty string name');
  }
  const kinds = Object.keys(REQUIRED_HOOKS);
  if (typeof plugin.kind !== 'string' || !kinds.includes(plugin.kind)) {
    throw what(
      `'${plugin.name}' has kind ${JSON.stringify(plugin.kind)}, expected one of ${kinds.join(', ')}`,
    );
  }
  if (plugin.apiVersion !== undefined && plugin.apiVersion !== PLUGIN_API_VERSION) {
    throw what(
      `'${plugin.name}' was written for plugin API ${String(plugin.apiVersion)}, this Menagerie has ${PLUGIN_API_VERSION}`,
    );
  }
  const missing = REQUIRED_HOOKS[plugin.kind as PluginKind].filter(
    (h) => typeof plugin[h] !== 'function',
  );
  if (missing.length > 0) {
    throw what(`'${plugin.name}' (${plugin.kind}) is missing hook(s): ${missing.join(', ')}`);
  }
  return candidate as Plugin;
}
