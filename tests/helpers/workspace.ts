import { openWorkspace, type Workspace } from '../../cli/workspace.js';
import { tempDir } from './fixtures.js';

/** A workspace on a real SQLite file in a temp folder; `dispose` closes and removes it. */
export async function tempWorkspace(): Promise<Workspace & { dispose: () => Promise<void> }> {
  const { dir, remove } = tempDir('menagerie-ws-');
  const workspace = await openWorkspace({ dataDir: dir });
  return {
    ...workspace,
    dispose: async () => {
      await workspace.close();
      remove();
    },
  };
}
