import { openWorkspace, type Workspace } from '../../cli/workspace.js';
import type { DatabaseBackend, StoreBackend } from './backends.js';
import { tempDir } from './fixtures.js';

/**
 * A workspace in a temp folder: on its own SQLite file, or on a fresh PostgreSQL schema
 * of `database`'s (named `name`, for tests that keep two side by side), and on the local
 * blob folder or `store`'s S3 prefix; `dispose` closes and removes it. `config` names a
 * menagerie.config.json whose plugins it loads (and its jobs' children).
 */
export async function tempWorkspace(
  options: {
    config?: string;
    database?: DatabaseBackend;
    store?: StoreBackend;
    name?: string;
  } = {},
): Promise<Workspace & { dispose: () => Promise<void> }> {
  const { dir, remove } = tempDir('menagerie-ws-');
  const database = await options.database?.location({ name: options.name, fresh: true });
  const store = await options.store?.url();
  const workspace = await openWorkspace({
    dataDir: dir,
    ...(options.config !== undefined && { config: options.config }),
    ...(database !== undefined && { database }),
    ...(store !== undefined && { store }),
  });
  return {
    ...workspace,
    dispose: async () => {
      await workspace.close();
      remove();
    },
  };
}
