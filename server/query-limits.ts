import { maxAliasesRule } from '@escape.tech/graphql-armor-max-aliases';
import { maxDepthRule } from '@escape.tech/graphql-armor-max-depth';
import { maxDirectivesRule } from '@escape.tech/graphql-armor-max-directives';
import {
  getOperationAST,
  GraphQLError,
  Kind,
  Lexer,
  Source,
  TokenKind,
  type DocumentNode,
  type GraphQLSchema,
  type ValidationContext,
  type ValidationRule,
} from 'graphql';
import { getComplexity } from 'graphql-query-complexity';
import type { NextFunction, Request, Response } from 'express';
import { MenagerieError, type ErrorCode } from '../core/errors.js';
import { toGraphQLError } from './error-format.js';
import { sendGraphQLError } from './graphql-error-handler.js';
import { menagerieCost } from './query-cost.js';

/** What one GraphQL operation may ask for, over HTTP and WebSocket alike. */
export interface QueryLimits {
  /** Deepest nesting of fields (fragments flattened, `__schema` not counted). Default 12. */
  maxDepth: number;
  /** Highest estimated cost: see query-cost.ts. Default 50,000. */
  maxCost: number;
  /** Aliases in the operation, fragments included. Default 30. */
  maxAliases: number;
  /** Lexical tokens in the document: bounds parsing and validation work. Default 2,000. */
  maxTokens: number;
  /** Directives in the operation, fragments included. Default 30. */
  maxDirectives: number;
  /** A query (not a mutation or subscription) is stopped after this long. Default 1,000 ms. */
  timeoutMs: number;
}

export const DEFAULT_QUERY_LIMITS: QueryLimits = {
  maxDepth: 12,
  maxCost: 50_000,
  maxAliases: 30,
  maxTokens: 2_000,
  maxDirectives: 30,
  timeoutMs: 1_000,
};

/** Armor's rules report through `onReject`; ours reports its own code instead of its text. */
function reject(code: ErrorCode, what: (found: string) => string) {
  return {
    propagateOnRejection: false,
    onReject: [
      (context: ValidationContext | null, error: GraphQLError) => {
        const found = /found (\d+)/.exec(error.message)?.[1] ?? 'too many';
        context?.reportError(toGraphQLError(new MenagerieError(code, what(found))));
      },
    ],
  };
}

/**
 * Validation rules for the depth, alias and directive limits, from graphql-armor: run with
 * graphql's own rules (Apollo's `validationRules`, and websocket.ts), they refuse an
 * operation before it runs, with QUERY_TOO_DEEP or QUERY_TOO_COMPLEX (400).
 */
export function queryLimitRules(limits: QueryLimits): ValidationRule[] {
  return [
    maxDepthRule({
      n: limits.maxDepth,
      flattenFragments: true,
      ...reject(
        'QUERY_TOO_DEEP',
        (n) => `the query nests ${n} levels deep; the limit is ${limits.maxDepth}`,
      ),
    }),
    maxAliasesRule({
      n: limits.maxAliases,
      ...reject(
        'QUERY_TOO_COMPLEX',
        (n) => `the query has ${n} aliases; the limit is ${limits.maxAliases}`,
      ),
    }),
    maxDirectivesRule({
      n: limits.maxDirectives,
      ...reject(
        'QUERY_TOO_COMPLEX',
        (n) => `the query has ${n} directives; the limit is ${limits.maxDirectives}`,
      ),
    }),
  ];
}

/**
 * The error to send when a document has more tokens than allowed, else null; counted with
 * graphql's own lexer, which stops one token past the limit, so a 1 MB query costs no more
 * than a query at the limit. A document that does not lex is left for the parser to report.
 */
export function checkTokens(query: unknown, limits: QueryLimits): GraphQLError | null {
  if (typeof query !== 'string') return null;
  const lexer = new Lexer(new Source(query));
  let tokens = 0;
  try {
    while (lexer.advance().kind !== TokenKind.EOF) {
      if (++tokens > limits.maxTokens) {
        return toGraphQLError(
          new MenagerieError(
            'QUERY_TOO_COMPLEX',
            `the query has more than ${limits.maxTokens} tokens; the limit is ${limits.maxTokens}`,
          ),
        );
      }
    }
  } catch {
    return null;
  }
  return null;
}

/**
 * The error to send when the operation that will run costs more than allowed, else null.
 * Its cost comes from graphql-query-complexity with the estimator of query-cost.ts, with
 * the request's variables, so `images(first: $n)` costs what `$n` says.
 */
export function checkQueryCost(
  schema: GraphQLSchema,
  document: DocumentNode,
  operationName: string | null | undefined,
  variables: Readonly<Record<string, unknown>> | undefined,
  limits: QueryLimits,
): GraphQLError | null {
  const cost = operationCost(schema, document, operationName, variables);
  if (cost === null) return null;
  if (cost <= limits.maxCost) return null;
  return toGraphQLError(
    new MenagerieError(
      'QUERY_TOO_COMPLEX',
      `the query's estimated cost is ${Number.isFinite(cost) ? cost : 'over 10,000 fields'}; ` +
        `the limit is ${limits.maxCost} (ask for smaller pages, fewer aliases or fewer nested lists)`,
    ),
  );
}

/**
 * Express middleware for `/graphql`, after the body parsers: a document over the token
 * limit is refused (QUERY_TOO_COMPLEX, 400) before Apollo parses it.
 */
export function refuseLongQueries(limits: QueryLimits) {
  return (req: Request, res: Response, next: NextFunction): void => {
    const query =
      (req.body as { query?: unknown } | undefined)?.query ??
      (req.method === 'GET' ? req.query['query'] : undefined);
    const error = checkTokens(query, limits);
    if (!error) {
      next();
      return;
    }
    sendGraphQLError(res, error.originalError as MenagerieError);
  };
}

/** Costs already computed, per parsed document (Apollo reuses one per query text). */
const costs = new WeakMap<DocumentNode, Map<string, number | null>>();
/** Variable sets remembered per document; a client cycling through more starts it afresh. */
const COSTS_PER_DOCUMENT = 64;
/** Longer operation name + variables are estimated every time instead of remembered. */
const MAX_COST_KEY = 1024;

/**
 * The estimated cost of the operation that will run, or null when there is none or its
 * variables do not coerce (execution reports those). Remembered per document, operation
 * name and variables (an upload stands as `<uploaded file>`): the same predict request
 * costs the same every time, and estimating it walked the whole document.
 */
function operationCost(
  schema: GraphQLSchema,
  document: DocumentNode,
  operationName: string | null | undefined,
  variables: Readonly<Record<string, unknown>> | undefined,
): number | null {
  let known = costs.get(document);
  const key = `${operationName ?? ''}\u0000${JSON.stringify(variables ?? {})}`;
  const cached = known?.get(key);
  if (cached !== undefined) return cached;
  const cost = estimateCost(schema, document, operationName, variables);
  if (key.length > MAX_COST_KEY) return cost; // large variables: not worth their memory
  if (!known || known.size >= COSTS_PER_DOCUMENT) costs.set(document, (known = new Map()));
  known.set(key, cost);
  return cost;
}

function estimateCost(
  schema: GraphQLSchema,
  document: DocumentNode,
  operationName: string | null | undefined,
  variables: Readonly<Record<string, unknown>> | undefined,
): number | null {
  const operation = getOperationAST(document, operationName);
  if (!operation) return null;
  let cost: number;
  try {
    cost = getComplexity({
      schema,
      // The operation that runs, and the fragments: the others cost nothing.
      query: {
        ...document,
        definitions: document.definitions.filter(
          (d) => d.kind !== Kind.OPERATION_DEFINITION || d === operation,
        ),
      },
      variables: { ...variables },
      estimators: [menagerieCost()],
    });
  } catch (error) {
    // Variables that do not coerce are reported by execution, with their own code.
    if (error instanceof GraphQLError && /maximum allowed number of nodes/.test(error.message))
      cost = Infinity;
    else return null;
  }
  return cost;
}
