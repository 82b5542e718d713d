import fs from 'node:fs';
import { describe, expect, it } from 'vitest';
import { generateGraphqlEnv, GRAPHQL_ENV_FILE } from '../../client/scripts/graphql-env.js';

describe('client/src/graphql/graphql-env.d.ts', () => {
  it('is what gql.tada generates from schema/schema.graphql (run `npm run schema:client` after `npm run schema`)', async () => {
    expect(await generateGraphqlEnv()).toBe(fs.readFileSync(GRAPHQL_ENV_FILE, 'utf8'));
  });
});
