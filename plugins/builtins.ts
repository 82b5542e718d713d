import type { Plugin } from './plugin.js';
import { localFsStorage } from './storage/local-fs.js';

/** The plugins Menagerie ships, registered through the same API as anyone else's. */
export function builtinPlugins(): Plugin[] {
  return [localFsStorage()];
}
