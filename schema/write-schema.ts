// Writes schema/schema.graphql from the resolvers: `npm run schema`.
// tests/server/schema-file.test.ts fails while the committed file is out of date.
import fs from 'node:fs';
import { buildMenagerieSchema, printMenagerieSchema } from './build-schema.js';

export const SCHEMA_FILE = new URL('./schema.graphql', import.meta.url);

const sdl = printMenagerieSchema(await buildMenagerieSchema());
fs.writeFileSync(SCHEMA_FILE, sdl);
console.log(`wrote ${SCHEMA_FILE.pathname}`);
