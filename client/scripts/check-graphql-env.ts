// Fails `npm run typecheck:client` while client/src/graphql/graphql-env.d.ts does not match
// schema/schema.graphql: a stale file would type the dashboard against an old API.
import fs from 'node:fs';
import { generateGraphqlEnv, GRAPHQL_ENV_FILE } from './graphql-env.js';

const committed = fs.existsSync(GRAPHQL_ENV_FILE) ? fs.readFileSync(GRAPHQL_ENV_FILE, 'utf8') : '';
if ((await generateGraphqlEnv()) !== committed) {
  console.error(
    `${GRAPHQL_ENV_FILE} does not match schema/schema.graphql: run \`npm run schema:client\``,
  );
  process.exit(1);
}
