import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { buildMenagerieSchema, printMenagerieSchema } from '../../schema/build-schema.js';
import { REPO_ROOT } from '../helpers/fixtures.js';

describe('schema/schema.graphql', () => {
  it('is what the resolvers build (run `npm run schema` after changing them)', async () => {
    const committed = fs.readFileSync(path.join(REPO_ROOT, 'schema/schema.graphql'), 'utf8');
    expect(printMenagerieSchema(await buildMenagerieSchema())).toBe(committed);
  });
});
