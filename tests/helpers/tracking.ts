import { openDatabase, type OpenDatabase } from '../../data/database.js';
import { createTrackingStore, type TrackingStore } from '../../tracking/tracking-store.js';
import type { DatabaseBackend } from './backends.js';
import { tempDir } from './fixtures.js';

/**
 * A tracking store with the real migrations, on in-memory SQLite or on `backend`'s fresh
 * database; artifacts in a temp folder.
 */
export async function memoryTrackingStore(backend?: DatabaseBackend): Promise<{
  store: TrackingStore;
  database: OpenDatabase;
  artifactRoot: string;
  dispose: () => Promise<void>;
}> {
  const database = backend ? await backend.open() : await openDatabase(':memory:');
  const { dir, remove } = tempDir('menagerie-tracking-');
  const store = createTrackingStore({ db: database.db, artifactRoot: dir });
  return {
    store,
    database,
    artifactRoot: dir,
    dispose: async () => {
      await database.close();
      remove();
    },
  };
}
