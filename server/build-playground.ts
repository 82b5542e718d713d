// Bundles the GraphiQL playground with Vite: `npm run build:playground`. The server also
// builds it on the first browser visit, so this is only to have it ready ahead of time.
import { ensurePlayground } from './playground.js';

const started = Date.now();
const dir = await ensurePlayground();
console.log(`playground bundle in ${dir} (${((Date.now() - started) / 1000).toFixed(1)} s)`);
