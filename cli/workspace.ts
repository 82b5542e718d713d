import fs from 'node:fs';
import path from 'node:path';
import { routeBlobStores, referenceBlobStore, type BlobStore } from '../data/blob-store.js';
import { openDatabase, type OpenDatabase } from '../data/database.js';
import { MenagerieError } from '../core/errors.js';
import { builtinPlugins } from '../plugins/builtins.js';
import { findConfigFile, loadConfig } from '../plugins/plugin-config.js';
import { createPluginRegistry, type PluginRegistry } from '../plugin-api/plugin-registry.js';
import { createModelEvaluations } from '../registry/model-evaluations.js';
import { failStaleRuns } from '../tracking/stale-runs.js';
import { createTrackingStore, type TrackingStore } from '../tracking/tracking-store.js';
import { createBackboneLoader, type BackboneLoader } from '../training/backbone-loader.js';

export const DEFAULT_DATA_DIR = '.menagerie';
export const DEFAULT_STORAGE = 'menagerie:local-fs';

/** An open data directory: its database, its blob store and the plugins that made them. */
export interface Workspace {
  dataDir: string;
  database: OpenDatabase;
  blobs: BlobStore;
  plugins: PluginRegistry;
  /** Experiments and runs; artifacts under `<dataDir>/artifacts`. */
  tracking: TrackingStore;
  /** Pretrained backbones, loaded once and shared by training, serving and similar images. */
  backbones: BackboneLoader;
  /** Where each plugin came from: 'builtin' or the config entry that loaded it. */
  pluginSources: Map<string, string>;
  /** The config file read, if any. */
  configFile?: string;
  close(): Promise<void>;
}

/** `--data-dir`, else $MENAGERIE_DATA_DIR, else `.menagerie/` in the working directory. */
export function resolveDataDir(flag?: string): string {
  return path.resolve(flag ?? process.env.MENAGERIE_DATA_DIR ?? DEFAULT_DATA_DIR);
}

export async function openWorkspace(
  options: { dataDir?: string; storage?: string; config?: string; cwd?: string } = {},
): Promise<Workspace> {
  const dataDir = resolveDataDir(options.dataDir);
  try {
    fs.mkdirSync(dataDir, { recursive: true });
    fs.accessSync(dataDir, fs.constants.W_OK);
  } catch (error) {
    throw new MenagerieError(
      'DATA_DIR_UNUSABLE',
      `cannot write to data directory ${dataDir}: ${String(error)}`,
    );
  }
  const plugins = createPluginRegistry(builtinPlugins());
  const pluginSources = new Map(plugins.list().map((p) => [`${p.kind}:${p.name}`, 'builtin']));
  const loaded = await loadConfig(findConfigFile(options.cwd ?? process.cwd(), options.config));
  for (const { plugin, source } of loaded.plugins) {
    try {
      plugins.register(plugin);
    } catch (error) {
      if (error instanceof MenagerieError) {
        throw new MenagerieError(
          error.code,
          `${error.message} (from '${source}' in ${loaded.file})`,
        );
      }
      throw error;
    }
    const { kind, name } = plugin as { kind: string; name: string };
    pluginSources.set(`${kind}:${name}`, source);
  }
  const storage = plugins.get('storage', options.storage ?? DEFAULT_STORAGE);
  const database = await openDatabase(path.join(dataDir, 'menagerie.db'));
  const blobs = routeBlobStores(storage.createStore({ dataDir }), referenceBlobStore());
  // A process killed mid-run leaves it RUNNING; every start settles such runs and evaluations.
  await failStaleRuns(database.db);
  await createModelEvaluations({ db: database.db }).failStale();
  const tracking = createTrackingStore({
    db: database.db,
    artifactRoot: path.join(dataDir, 'artifacts'),
  });
  const backbones = createBackboneLoader({ plugins, cacheDir: path.join(dataDir, 'cache') });
  return {
    dataDir,
    database,
    blobs,
    plugins,
    tracking,
    backbones,
    pluginSources,
    ...(loaded.file ? { configFile: loaded.file } : {}),
    close: () => {
      backbones.close();
      return database.close();
    },
  };
}
