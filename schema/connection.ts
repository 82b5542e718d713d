import { Field, Int, ObjectType, type ClassType } from 'type-graphql';
import { MenagerieError } from '../core/errors.js';

@ObjectType({ description: 'Relay-style paging state.' })
export class PageInfo {
  @Field(() => Boolean)
  hasNextPage!: boolean;

  @Field(() => String, { nullable: true, description: 'Pass as `after` for the next page.' })
  endCursor!: string | null;
}

export interface Edge<TNode> {
  cursor: string;
  node: TNode;
}

/** The plain shape a resolver returns for any `XConnection` type. */
export interface ConnectionValue<TNode> {
  edges: Edge<TNode>[];
  pageInfo: PageInfo;
  totalCount: number;
}

/**
 * A Relay-style connection type for `Node`: `{ edges { cursor node } pageInfo totalCount }`.
 * Each use makes `<name>Connection` and `<name>Edge`; resolvers return a ConnectionValue.
 *
 * ```ts
 * @ObjectType()
 * export class RunConnection extends Connection(Run, 'Run') {}
 * // @Query(() => RunConnection) runs(...): Promise<ConnectionValue<Run>>
 * ```
 */
export function Connection<TNode extends object>(Node: ClassType<TNode>, name: string) {
  @ObjectType(`${name}Edge`)
  class EdgeType implements Edge<TNode> {
    @Field(() => String, { description: 'Opaque; pass as `after` to start after this node.' })
    cursor!: string;

    @Field(() => Node)
    node!: TNode;
  }

  // Not emitted itself: the schema holds only types reachable from a resolver.
  @ObjectType(`${name}ConnectionBase`)
  abstract class ConnectionType implements ConnectionValue<TNode> {
    @Field(() => [EdgeType])
    edges!: EdgeType[];

    @Field(() => PageInfo)
    pageInfo!: PageInfo;

    @Field(() => Int, { description: 'Matching nodes across all pages.' })
    totalCount!: number;
  }
  return ConnectionType;
}

/** Builds a ConnectionValue from one page of nodes, with cursors from `cursorOf`. */
export function toConnection<TRow, TNode>(
  page: { rows: readonly TRow[]; hasNextPage: boolean; totalCount: number },
  toNode: (row: TRow) => TNode,
  cursorOf: (row: TRow) => string,
): ConnectionValue<TNode> {
  const edges = page.rows.map((row) => ({ cursor: cursorOf(row), node: toNode(row) }));
  return {
    edges,
    pageInfo: { hasNextPage: page.hasNextPage, endCursor: edges.at(-1)?.cursor ?? null },
    totalCount: page.totalCount,
  };
}

/** The largest page a connection field returns (`first`). */
export const MAX_PAGE_SIZE = 1000;

/** Refuses a page size outside 1–1000 with BAD_USER_INPUT, the range in the message. */
export function checkPageSize(first: number, argument = 'first'): number {
  if (!Number.isInteger(first) || first < 1 || first > MAX_PAGE_SIZE)
    throw new MenagerieError(
      'BAD_USER_INPUT',
      `${argument} should be 1 to ${MAX_PAGE_SIZE}, got ${first}`,
    );
  return first;
}
