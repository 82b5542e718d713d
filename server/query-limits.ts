import {
  getNamedType,
  getOperationAST,
  type GraphQLError,
  isInterfaceType,
  isObjectType,
  Kind,
  type DocumentNode,
  type FragmentDefinitionNode,
  type GraphQLField,
  type GraphQLNamedType,
  type GraphQLSchema,
  type FieldNode,
  type SelectionSetNode,
} from 'graphql';
import { MenagerieError } from '../core/errors.js';
import { toGraphQLError } from './error-format.js';

export interface QueryLimits {
  /** Deepest nesting of fields allowed (introspection fields not counted). Default 12. */
  maxDepth: number;
  /** Highest estimated cost allowed: see measureOperation. Default 20,000. */
  maxCost: number;
}

export const DEFAULT_QUERY_LIMITS: QueryLimits = { maxDepth: 12, maxCost: 20_000 };

/** Arguments that say how many items a field returns; its children cost that many times. */
const PAGE_SIZE_ARGS = ['first', 'last', 'limit', 'k', 'topK'];

interface Measure {
  depth: number;
  cost: number;
}

/**
 * Depth and estimated cost of the operation a request will run. Each field costs 1, plus
 * its children's cost times its page size (`first`, `k`…: the value sent, else the
 * argument's default, else 1), so `images(first: 1000) { edges { node { id } } }` costs
 * about 3,000. Fragments are measured once each, so fragment fan-out cannot blow up the
 * measuring itself.
 */
export function measureOperation(
  schema: GraphQLSchema,
  document: DocumentNode,
  operationName?: string | null,
  variables: Readonly<Record<string, unknown>> = {},
): Measure {
  const operation = getOperationAST(document, operationName);
  if (!operation) return { depth: 0, cost: 0 };
  const fragments = new Map<string, FragmentDefinitionNode>();
  for (const definition of document.definitions) {
    if (definition.kind === Kind.FRAGMENT_DEFINITION)
      fragments.set(definition.name.value, definition);
  }
  const fragmentMeasures = new Map<string, Measure>();
  const visiting = new Set<string>();

  const pageSize = (node: FieldNode, field: GraphQLField<unknown, unknown>): number => {
    for (const name of PAGE_SIZE_ARGS) {
      const argument = node.arguments?.find((a) => a.name.value === name);
      let value: unknown;
      if (argument?.value.kind === Kind.INT) value = Number(argument.value.value);
      else if (argument?.value.kind === Kind.VARIABLE) value = variables[argument.value.name.value];
      else if (!argument) value = field.args.find((a) => a.name === name)?.defaultValue;
      if (typeof value === 'number' && Number.isFinite(value)) return Math.max(1, value);
    }
    return 1;
  };

  const measure = (
    selectionSet: SelectionSetNode,
    parent: GraphQLNamedType | undefined,
  ): Measure => {
    const total: Measure = { depth: 0, cost: 0 };
    const add = (m: Measure) => {
      total.cost += m.cost;
      total.depth = Math.max(total.depth, m.depth);
    };
    for (const selection of selectionSet.selections) {
      if (selection.kind === Kind.FIELD) {
        // Introspection (GraphiQL's schema query is deep by nature) is cheap and bounded.
        if (selection.name.value.startsWith('__')) continue;
        const field =
          parent && (isObjectType(parent) || isInterfaceType(parent))
            ? parent.getFields()[selection.name.value]
            : undefined;
        if (!field) continue;
        const child = selection.selectionSet
          ? measure(selection.selectionSet, getNamedType(field.type))
          : { depth: 0, cost: 0 };
        add({ depth: child.depth + 1, cost: 1 + pageSize(selection, field) * child.cost });
      } else if (selection.kind === Kind.INLINE_FRAGMENT) {
        const type = selection.typeCondition
          ? schema.getType(selection.typeCondition.name.value)
          : parent;
        add(measure(selection.selectionSet, type ?? undefined));
      } else {
        const name = selection.name.value;
        const fragment = fragments.get(name);
        if (!fragment || visiting.has(name)) continue;
        let known = fragmentMeasures.get(name);
        if (!known) {
          visiting.add(name);
          known = measure(
            fragment.selectionSet,
            schema.getType(fragment.typeCondition.name.value) ?? undefined,
          );
          visiting.delete(name);
          fragmentMeasures.set(name, known);
        }
        add(known);
      }
    }
    return total;
  };

  const root =
    operation.operation === 'query'
      ? schema.getQueryType()
      : operation.operation === 'mutation'
        ? schema.getMutationType()
        : schema.getSubscriptionType();
  return measure(operation.selectionSet, root ?? undefined);
}

/** The error to send when an operation is over a limit, else null. */
export function checkQueryLimits(
  schema: GraphQLSchema,
  document: DocumentNode,
  operationName: string | null | undefined,
  variables: Readonly<Record<string, unknown>> | undefined,
  limits: QueryLimits,
): GraphQLError | null {
  const { depth, cost } = measureOperation(schema, document, operationName, variables);
  if (depth > limits.maxDepth) {
    return toGraphQLError(
      new MenagerieError(
        'QUERY_TOO_DEEP',
        `the query nests ${depth} levels deep; the limit is ${limits.maxDepth}`,
      ),
    );
  }
  if (cost > limits.maxCost) {
    return toGraphQLError(
      new MenagerieError(
        'QUERY_TOO_COMPLEX',
        `the query's estimated cost is ${cost}; the limit is ${limits.maxCost} (ask for smaller pages)`,
      ),
    );
  }
  return null;
}
