import fs from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { MenagerieError } from '../core/errors.js';

/** What `menagerie.config.{js,mjs,json}` may hold. */
export interface MenagerieConfig {
  /** Plugin modules: paths relative to the config file, or package names. */
  plugins?: string[];
}

/** A plugin object and where it came from, for `menagerie plugins` and error messages. */
export interface LoadedPlugin {
  plugin: unknown;
  source: string;
}

export const CONFIG_FILES = [
  'menagerie.config.js',
  'menagerie.config.mjs',
  'menagerie.config.json',
];

/**
 * Finds the config: `explicit` (from `--config` or $MENAGERIE_CONFIG) must exist; otherwise
 * the first of CONFIG_FILES in `cwd`, or none.
 */
export function findConfigFile(cwd: string, explicit?: string): string | undefined {
  const named = explicit ?? process.env.MENAGERIE_CONFIG;
  if (named) {
    const file = path.resolve(cwd, named);
    if (!fs.existsSync(file)) {
      throw new MenagerieError('CONFIG_INVALID', `config file ${file} does not exist`);
    }
    return file;
  }
  return CONFIG_FILES.map((name) => path.join(cwd, name)).find((file) => fs.existsSync(file));
}

/**
 * Reads a config file and imports the plugins it lists. A module's default export (or its
 * `plugins` export) may be one plugin, an array of them, or a factory returning either;
 * validation happens when they are registered.
 *
 * ```ts
 * // menagerie.config.json: { "plugins": ["./plugins/tiny-model.js", "menagerie-plugin-s3"] }
 * const { config, plugins } = await loadConfig(findConfigFile(process.cwd()));
 * ```
 */
export async function loadConfig(
  file: string | undefined,
): Promise<{ file?: string; config: MenagerieConfig; plugins: LoadedPlugin[] }> {
  if (!file) return { config: {}, plugins: [] };
  const config = await readConfig(file);
  const plugins: LoadedPlugin[] = [];
  for (const spec of config.plugins ?? []) {
    for (const plugin of await importPlugins(spec, path.dirname(file))) {
      plugins.push({ plugin, source: spec });
    }
  }
  return { file, config, plugins };
}

async function readConfig(file: string): Promise<MenagerieConfig> {
  let raw: unknown;
  try {
    if (file.endsWith('.json')) {
      raw = JSON.parse(fs.readFileSync(file, 'utf8'));
    } else {
      const module = (await import(pathToFileURL(file).href)) as { default?: unknown };
      raw = module.default;
    }
  } catch (error) {
    throw new MenagerieError('CONFIG_INVALID', `cannot read ${file}: ${messageOf(error)}`, {
      cause: error,
    });
  }
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) {
    throw new MenagerieError('CONFIG_INVALID', `${file} should hold an object, got ${kindOf(raw)}`);
  }
  const plugins = (raw as { plugins?: unknown }).plugins;
  if (
    plugins !== undefined &&
    !(Array.isArray(plugins) && plugins.every((p) => typeof p === 'string' && p !== ''))
  ) {
    throw new MenagerieError(
      'CONFIG_INVALID',
      `${file}: "plugins" should be an array of module paths or package names, got ${JSON.stringify(plugins)}`,
    );
  }
  return raw as MenagerieConfig;
}

async function importPlugins(spec: string, baseDir: string): Promise<unknown[]> {
  let url: string;
  try {
    url =
      spec.startsWith('.') || path.isAbsolute(spec)
        ? pathToFileURL(path.resolve(baseDir, spec)).href
        : pathToFileURL(createRequire(path.join(baseDir, 'noop.js')).resolve(spec)).href;
  } catch (error) {
    throw new MenagerieError(
      'PLUGIN_INVALID',
      `plugin module '${spec}' not found: ${messageOf(error)}`,
    );
  }
  let module: Record<string, unknown>;
  try {
    module = (await import(url)) as Record<string, unknown>;
  } catch (error) {
    throw new MenagerieError(
      'PLUGIN_INVALID',
      `plugin module '${spec}' failed to load: ${messageOf(error)}`,
      {
        cause: error,
      },
    );
  }
  let exported = module.default ?? module.plugins ?? module.plugin;
  if (exported === undefined) {
    throw new MenagerieError(
      'PLUGIN_INVALID',
      `plugin module '${spec}' has no default export (exports: ${Object.keys(module).join(', ') || 'none'})`,
    );
  }
  if (typeof exported === 'function') exported = await (exported as () => unknown)();
  return Array.isArray(exported) ? exported : [exported];
}

function messageOf(error: unknown): string {
  return error instanceof Error ? error.message.split('\n')[0]! : String(error);
}

function kindOf(value: unknown): string {
  return value === null ? 'null' : Array.isArray(value) ? 'an array' : typeof value;
}
