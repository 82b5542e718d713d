import type { Kysely } from 'kysely';
import { MenagerieError } from '../core/errors.js';
import type { Database } from '../data/tables.js';
import { countRunIds, decodePageToken, encodePageToken, type RunSearch } from './run-search.js';
import type { Run, TrackingStore } from './tracking-store.js';

export const MAX_RUN_PAGE = 1000;

/** One page of a run search, with a cursor per run and the count across pages. */
export interface RunPage {
  runs: Run[];
  /** `cursors[i]` continues the search after `runs[i]`. */
  cursors: string[];
  hasNextPage: boolean;
  totalCount: number;
}

/**
 * A Relay-style page of `searchRuns`: `first` runs after the cursor `after` (a page token of
 * the same search). The filter is parsed once by the search; a bad one is RUN_FILTER_INVALID.
 *
 * ```ts
 * const page = await searchRunPage({ db, tracking }, { filter: 'metrics.val_accuracy > 0.9', first: 20 });
 * page.runs.length; // ≤ 20
 * await searchRunPage({ db, tracking }, { filter: 'metrics.val_accuracy > 0.9', first: 20, after: page.cursors.at(-1) });
 * ```
 */
export async function searchRunPage(
  deps: { db: Kysely<Database>; tracking: TrackingStore },
  search: Omit<RunSearch, 'maxResults' | 'pageToken'> & { first: number; after?: string | null },
): Promise<RunPage> {
  const { first, after, ...rest } = search;
  if (!Number.isInteger(first) || first < 1 || first > MAX_RUN_PAGE)
    throw new MenagerieError(
      'BAD_USER_INPUT',
      `first should be a whole number from 1 to ${MAX_RUN_PAGE}, got ${first}`,
    );
  const query: RunSearch = { ...rest, maxResults: first, pageToken: after ?? null };
  const offset = after ? decodePageToken(after, query) : 0;
  const { runs, nextPageToken } = await deps.tracking.searchRuns(query);
  return {
    runs,
    cursors: runs.map((_, i) => encodePageToken(offset + i + 1, query)),
    hasNextPage: nextPageToken !== null,
    totalCount: await countRunIds(deps.db, rest),
  };
}
