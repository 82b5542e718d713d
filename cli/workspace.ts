import fs from 'node:fs';
import path from 'node:path';
import {
  localArtifactStore,
  routeArtifactStores,
  type ArtifactStore,
} from '../data/artifact-store.js';
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
/** The storage plugin a store URL of each scheme selects. */
const STORAGE_BY_SCHEME: Record<string, string> = { s3: 'menagerie:s3' };

/**
 * An open workspace: its database, its blob and artifact stores and the plugins that made
 * them. The data directory holds local state (caches, tokens) and, by default, the SQLite
 * file and the stores' folders.
 */
export interface Workspace {
  dataDir: string;
  database: OpenDatabase;
  blobs: BlobStore;
  /** Run and model artifacts: `<dataDir>/artifacts`, or the store URL's bucket. */
  artifacts: ArtifactStore;
  plugins: PluginRegistry;
  /** Experiments and runs; their artifacts in `artifacts`. */
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

/**
 * `--database`, else $MENAGERIE_DATABASE_URL, else `<dataDir>/menagerie.db`: a SQLite path
 * or a `postgres://` URL. (An empty variable counts as unset.)
 */
export function resolveDatabase(dataDir: string, flag?: string): string {
  return flag || process.env.MENAGERIE_DATABASE_URL || path.join(dataDir, 'menagerie.db');
}

/**
 * `--store`, else $MENAGERIE_STORE_URL: an `s3://` URL, or undefined for the local folder
 * (also when `flag` is null: the local folder whatever the environment says).
 */
export function resolveStore(flag?: string | null): string | undefined {
  if (flag === null) return undefined;
  return flag || process.env.MENAGERIE_STORE_URL || undefined;
}

export interface OpenWorkspaceOptions {
  dataDir?: string;
  /** A SQLite path or `postgres://` URL (see `resolveDatabase`). */
  database?: string;
  /** A store URL such as `s3://bucket/prefix?endpoint=http://…`; null: the local folder. */
  store?: string | null;
  /** The storage plugin by name, when no store URL picks one. */
  storage?: string;
  config?: string;
  cwd?: string;
}

/**
 * Opens a workspace: plugins from the config, the database (migrated), the blob and
 * artifact stores, and the tracking store; settles runs a killed process left RUNNING.
 * Child processes (jobs, embeddings) reopen it from the same data directory and inherit
 * the environment, so the command line exports `--database` and `--store` to it.
 *
 * ```ts
 * const ws = await openWorkspace({ dataDir: '.menagerie', database: 'postgres://…', store: 's3://…' });
 * ```
 */
export async function openWorkspace(options: OpenWorkspaceOptions = {}): Promise<Workspace> {
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
  const url = resolveStore(options.store);
  const scheme = url ? /^([a-z][a-z0-9+.-]*):/i.exec(url)?.[1]?.toLowerCase() : undefined;
  const byScheme = scheme ? STORAGE_BY_SCHEME[scheme] : undefined;
  if (url && !byScheme && !options.storage)
    throw new MenagerieError(
      'CONFIG_INVALID',
      `no storage plugin takes the store URL '${url}': use s3://bucket/prefix?endpoint=…, ` +
        'or name the plugin that does',
    );
  const storage = plugins.get('storage', options.storage ?? byScheme ?? DEFAULT_STORAGE);
  const context = { dataDir, ...(url && { url }) };
  const localArtifacts = localArtifactStore(path.join(dataDir, 'artifacts'));
  const ownArtifacts = storage.createArtifactStore?.(context) ?? localArtifacts;
  // Runs recorded before a move to another store keep their file:// folders.
  const artifacts = ownArtifacts.schemes.includes('file')
    ? ownArtifacts
    : routeArtifactStores(ownArtifacts, localArtifacts);
  const blobs = routeBlobStores(storage.createStore(context), referenceBlobStore());
  const database = await openDatabase(resolveDatabase(dataDir, options.database));
  // A process killed mid-run leaves it RUNNING; every start settles such runs.
  await failStaleRuns(database.db);
  const tracking = createTrackingStore({ db: database.db, artifacts });
  // A process killed mid-run leaves evaluations RUNNING too: settle them the same way.
  await createModelEvaluations({ db: database.db }).failStale();
  const backbones = createBackboneLoader({ plugins, cacheDir: path.join(dataDir, 'cache') });
  return {
    dataDir,
    database,
    blobs,
    artifacts,
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
