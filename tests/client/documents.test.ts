import fs from 'node:fs';
import path from 'node:path';
import { buildSchema, validate, type DocumentNode } from 'graphql';
import { describe, expect, it } from 'vitest';
import { REPO_ROOT } from '../helpers/fixtures.js';

// Every operation the dashboard sends, checked against the schema the server publishes, so
// a renamed field or a new non-null argument fails here rather than in a browser.
const schema = buildSchema(
  fs.readFileSync(path.join(REPO_ROOT, 'schema', 'schema.graphql'), 'utf8'),
);
const GRAPHQL_DIR = path.join(REPO_ROOT, 'client', 'src', 'graphql');

const isDocument = (value: unknown): value is DocumentNode =>
  typeof value === 'object' && value !== null && (value as { kind?: unknown }).kind === 'Document';

const documents: [string, DocumentNode][] = [];
for (const file of fs
  .readdirSync(GRAPHQL_DIR)
  // graphql-env.d.ts is the schema's types for gql.tada, not a module with documents.
  .filter((f) => f.endsWith('.ts') && !f.endsWith('.d.ts'))
  .sort()) {
  const module = (await import(path.join(GRAPHQL_DIR, file))) as Record<string, unknown>;
  for (const [name, value] of Object.entries(module))
    if (isDocument(value)) documents.push([`${file}: ${name}`, value]);
}

describe('dashboard GraphQL documents', () => {
  it('finds the operations', () => {
    expect(documents.length).toBeGreaterThanOrEqual(15);
  });

  it.each(documents)('%s is valid against schema/schema.graphql', (_, document) => {
    expect(validate(schema, document).map((e) => e.message)).toEqual([]);
  });
});
