import { createHash } from 'node:crypto';
import type { Kysely } from 'kysely';
import { excerpt, MenagerieError } from '../core/errors.js';
import { dialectOf } from '../data/sql-dialect.js';
import type { Database } from '../data/tables.js';
import {
  parseRunFilter,
  parseRunOrder,
  RUN_SEARCH_LIMITS,
  runFilterExpression,
  runOrderExpression,
} from './run-filter.js';

/** A run search, as MLflow's `search_runs`. */
export interface RunSearch {
  /** Only runs of these experiments; all experiments when left out. */
  experimentIds?: readonly number[];
  /** MLflow filter syntax: `metrics.val_accuracy > 0.9 AND params.optimizer = 'adam'`. */
  filter?: string;
  /** Clauses such as `metrics.val_accuracy DESC`; runs without the key sort last. Default: newest first. */
  orderBy?: string | readonly string[];
  /** Page size, 1–50,000 (default 1,000, as MLflow). */
  maxResults?: number;
  /** `nextPageToken` of the previous page of the same search. */
  pageToken?: string | null;
  /** Include deleted runs and runs of deleted experiments (default false). */
  includeDeleted?: boolean;
}

const MAX_RESULTS = 50_000;

function fingerprint(search: RunSearch): string {
  const { experimentIds, filter, orderBy, includeDeleted } = search;
  return createHash('sha256')
    .update(
      JSON.stringify([
        experimentIds ?? null,
        filter ?? '',
        [orderBy ?? []].flat(),
        !!includeDeleted,
      ]),
    )
    .digest('hex')
    .slice(0, 12);
}

/** Opaque page tokens, tied to the search that issued them: the offset of the next run. */
export function encodePageToken(offset: number, search: RunSearch): string {
  return Buffer.from(`runs:${offset}:${fingerprint(search)}`).toString('base64url');
}

export function decodePageToken(token: string, search: RunSearch): number {
  const match = /^runs:(\d{1,15}):([0-9a-f]{12})$/.exec(Buffer.from(token, 'base64url').toString());
  if (!match)
    throw new MenagerieError(
      'CURSOR_INVALID',
      `'${excerpt(token)}' is not a page token this store issued`,
    );
  if (match[2] !== fingerprint(search))
    throw new MenagerieError(
      'CURSOR_INVALID',
      'the page token belongs to another search: page with the same filter, order and experiments',
    );
  return Number(match[1]);
}

/**
 * Ids of the runs matching a search, one page at a time. Paging is by offset (as MLflow):
 * orders on nullable metric values make keyset predicates fragile, and a stable
 * tie-break (start time, then id) keeps pages consistent while no runs are added.
 */
export async function searchRunIds(
  db: Kysely<Database>,
  search: RunSearch,
): Promise<{ ids: string[]; nextPageToken: string | null }> {
  const maxResults = search.maxResults ?? 1000;
  if (!Number.isInteger(maxResults) || maxResults < 1 || maxResults > MAX_RESULTS)
    throw new MenagerieError(
      'RUN_FILTER_INVALID',
      `maxResults should be a whole number from 1 to ${MAX_RESULTS}, got ${maxResults}`,
    );
  const clauses = [search.orderBy ?? []].flat();
  if (clauses.length > RUN_SEARCH_LIMITS.orderBy)
    throw new MenagerieError(
      'RUN_FILTER_INVALID',
      `a search has at most ${RUN_SEARCH_LIMITS.orderBy} order-by clauses, got ${clauses.length}`,
    );
  const orders = clauses.map(parseRunOrder);
  const offset = search.pageToken ? decodePageToken(search.pageToken, search) : 0;
  let query = matchingRuns(db, search);
  if (!query) return { ids: [], nextPageToken: null };
  for (const order of orders) {
    // Missing values (and NaN, stored as null) last, whichever the direction.
    query = query
      .orderBy((eb) => eb(runOrderExpression(eb, order.target), 'is', null))
      .orderBy((eb) => runOrderExpression(eb, order.target), order.direction);
  }
  const rows = await query
    .orderBy('runs.start_time', 'desc')
    .orderBy('runs.id')
    .limit(maxResults + 1)
    .offset(offset)
    .execute();
  const ids = rows.slice(0, maxResults).map((r) => r.id);
  return {
    ids,
    nextPageToken: rows.length > maxResults ? encodePageToken(offset + maxResults, search) : null,
  };
}

/** How many runs match a search across all its pages (its filter checked as searchRunIds does). */
export async function countRunIds(
  db: Kysely<Database>,
  search: Omit<RunSearch, 'orderBy' | 'maxResults' | 'pageToken'>,
): Promise<number> {
  const query = matchingRuns(db, search);
  if (!query) return 0;
  const row = await query
    .clearSelect()
    .select((eb) => eb.fn.countAll<number>().as('count'))
    .executeTakeFirstOrThrow();
  return Number(row.count);
}

/** The runs a search's experiments, lifecycle and filter select; null when none can match. */
function matchingRuns(db: Kysely<Database>, search: RunSearch) {
  const filter = parseRunFilter(search.filter ?? '');
  let query = db
    .selectFrom('runs')
    .innerJoin('experiments', 'experiments.id', 'runs.experiment_id')
    .select('runs.id');
  if (search.experimentIds) {
    if (search.experimentIds.length === 0) return null;
    query = query.where('runs.experiment_id', 'in', search.experimentIds);
  }
  if (!search.includeDeleted)
    query = query
      .where('runs.lifecycle', '=', 'active')
      .where('experiments.lifecycle', '=', 'active');
  if (filter) query = query.where((eb) => runFilterExpression(eb, filter, dialectOf(db)));
  return query;
}
