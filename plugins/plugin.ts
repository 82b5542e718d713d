import type { BlobStore } from '../data/blob-store.js';

/** The plugin contract version this Menagerie implements; a plugin may pin the one it needs. */
export const PLUGIN_API_VERSION = 1;

interface PluginBase {
  /** Unique per kind. Built-ins are prefixed `menagerie:`. */
  name: string;
  /** The plugin's own version, recorded with what it builds. */
  version?: string;
  /** The PLUGIN_API_VERSION the plugin was written for; registration refuses another. */
  apiVersion?: number;
  description?: string;
}

/** Where a storage plugin may keep state. */
export interface StorageContext {
  /** The Menagerie data directory (`--data-dir`). */
  dataDir: string;
}

/**
 * A storage plugin makes the blob store image bytes go to.
 *
 * ```ts
 * import { definePlugin } from 'menagerie/plugins/plugin.js';
 * export default definePlugin({
 *   name: 'my-bucket',
 *   kind: 'storage',
 *   createStore: ({ dataDir }) => createMyBucketStore(dataDir),
 * });
 * ```
 */
export interface StoragePlugin extends PluginBase {
  kind: 'storage';
  /** Called once per open data directory. */
  createStore(context: StorageContext): BlobStore;
}

/** Every plugin kind; model and tuner kinds join this union. */
export type Plugin = StoragePlugin;
export type PluginKind = Plugin['kind'];

/** Hooks each kind must have, checked when a plugin registers. */
export const REQUIRED_HOOKS: Record<PluginKind, readonly string[]> = {
  storage: ['createStore'],
};

/** Identity at run time; gives a plugin literal its type, the way Vite's defineConfig does. */
export function definePlugin<P extends Plugin>(plugin: P): P {
  return plugin;
}
