import { openWorkspace, type Workspace } from '../../cli/workspace.js';
import { tempDir } from './fixtures.js';

/**
 * A workspace on a real SQLite file in a temp folder; `dispose` closes and removes it.
 * `config` names a menagerie.config.json whose plugins it loads (and its jobs' children).
 */
export async function tempWorkspace(
  options: { config?: string } = {},
): Promise<Workspace & { dispose: () => Promise<void> }> {
  const { dir, remove } = tempDir('menagerie-ws-');
  const workspace = await openWorkspace({ dataDir: dir, ...options });
  return {
    ...workspace,
    dispose: async () => {
      await workspace.close();
      remove();
    },
  };
}
