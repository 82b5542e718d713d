// client/src/graphql/graphql-env.d.ts is gql.tada's introspection of schema/schema.graphql:
// it types every document in client/src/graphql. `npm run schema:client` rewrites it after
// `npm run schema`; check-graphql-env.ts and tests/client/graphql-env.test.ts fail while the
// committed file is out of date.
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import { createRequire } from 'node:module';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';

const CLIENT_DIR = path.resolve(import.meta.dirname, '..');

export const GRAPHQL_ENV_FILE = path.join(CLIENT_DIR, 'src', 'graphql', 'graphql-env.d.ts');

/** The tsconfig whose `@0no-co/graphqlsp` plugin entry names the schema and the output. */
const TSCONFIG = path.join(CLIENT_DIR, 'tsconfig.json');

/**
 * What `gql.tada generate-output` writes from schema/schema.graphql today, generated into a
 * temporary folder so the committed file is left alone.
 */
export async function generateGraphqlEnv(): Promise<string> {
  const require = createRequire(import.meta.url);
  const cli = path.join(path.dirname(require.resolve('gql.tada/package.json')), 'bin', 'cli.js');
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'menagerie-graphql-env-'));
  try {
    // The extension picks the format: .d.ts gets the preprocessed types the committed file has.
    const output = path.join(dir, 'graphql-env.d.ts');
    await promisify(execFile)(process.execPath, [
      cli,
      'generate-output',
      '--tsconfig',
      TSCONFIG,
      '--output',
      output,
    ]);
    return fs.readFileSync(output, 'utf8');
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}
