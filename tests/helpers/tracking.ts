import { openDatabase, type OpenDatabase } from '../../data/database.js';
import { createTrackingStore, type TrackingStore } from '../../tracking/tracking-store.js';
import { tempDir } from './fixtures.js';

/** A tracking store on in-memory SQLite with the real migrations; artifacts in a temp folder. */
export async function memoryTrackingStore(): Promise<{
  store: TrackingStore;
  database: OpenDatabase;
  artifactRoot: string;
  dispose: () => Promise<void>;
}> {
  const database = await openDatabase(':memory:');
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
