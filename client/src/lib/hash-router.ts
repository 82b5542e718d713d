import { computed, ref, type ComputedRef } from 'vue';

/** A location inside the dashboard: `#/dataset?label=cat` is `{ page: 'dataset', query }`. */
export interface Route {
  page: string;
  rest: string[];
  query: Readonly<Record<string, string>>;
}

function parse(hash: string): Route {
  const [path = '', search = ''] = hash.replace(/^#\/?/, '').split('?');
  const [page = '', ...rest] = path.split('/').filter(Boolean).map(decodeURIComponent);
  return { page, rest, query: Object.fromEntries(new URLSearchParams(search)) };
}

export function href(page: string, query: Record<string, string | undefined> = {}): string {
  const search = new URLSearchParams(
    Object.entries(query).filter((entry): entry is [string, string] => !!entry[1]),
  ).toString();
  return `#/${page}${search ? `?${search}` : ''}`;
}

export interface HashRouter {
  route: ComputedRef<Route>;
  /** Changes the query of the current page without adding a history entry. */
  replaceQuery(query: Record<string, string | undefined>): void;
}

/**
 * A dozen lines instead of vue-router: pages are few and flat, and the hash keeps every
 * dashboard URL servable by the API server's static handler.
 */
export function createHashRouter(): HashRouter {
  const hash = ref(window.location.hash);
  window.addEventListener('hashchange', () => {
    hash.value = window.location.hash;
  });
  const route = computed(() => parse(hash.value));
  return {
    route,
    replaceQuery(query) {
      const next = href(route.value.page, query);
      window.history.replaceState(null, '', next);
      hash.value = next;
    },
  };
}
