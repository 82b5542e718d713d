import fs from 'node:fs';
import path from 'node:path';
import {
  buildSchema,
  getNamedType,
  isEnumType,
  isScalarType,
  typeFromAST,
  validate,
  type DocumentNode,
} from 'graphql';
import { getComplexity } from 'graphql-query-complexity';
import { describe, expect, it } from 'vitest';
import { menagerieCost } from '../../server/query-cost.js';
import { DEFAULT_QUERY_LIMITS } from '../../server/query-limits.js';
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

  // The server refuses a query over the cost limit (QUERY_TOO_COMPLEX) before running it:
  // every query of the dashboard must stay under it, with pages of 50 where it sends a size.
  const queries = documents.filter(([, d]) =>
    d.definitions.some((def) => def.kind === 'OperationDefinition' && def.operation === 'query'),
  );
  it.each(queries)('%s costs less than the query limit', (_, document) => {
    const cost = getComplexity({
      schema,
      query: document,
      variables: sampleVariables(document),
      estimators: [menagerieCost()],
    });
    expect(cost).toBeLessThanOrEqual(DEFAULT_QUERY_LIMITS.maxCost);
  });
});

/** A value for each variable: 50 for sizes, a placeholder for names and ids, enums' first. */
function sampleVariables(document: DocumentNode): Record<string, unknown> {
  const values: Record<string, unknown> = {};
  for (const def of document.definitions) {
    if (def.kind !== 'OperationDefinition') continue;
    for (const v of def.variableDefinitions ?? []) {
      const type = getNamedType(typeFromAST(schema, v.type));
      if (!type || v.defaultValue) continue;
      if (isEnumType(type)) values[v.variable.name.value] = type.getValues()[0]!.value;
      else if (type.name === 'Int' || type.name === 'Float') values[v.variable.name.value] = 50;
      else if (type.name === 'Boolean') values[v.variable.name.value] = false;
      else if (isScalarType(type)) values[v.variable.name.value] = '1';
    }
  }
  return values;
}
