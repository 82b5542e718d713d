import type { Client } from '@urql/core';
import { inject, onBeforeUnmount, ref, type InjectionKey, type Ref } from 'vue';
import { toApiProblem, type ApiProblem } from '../graphql/api-problem.js';
import { SERVING_QUERY, type ServingInfo } from '../graphql/prediction.js';
import type { HashRouter } from './hash-router.js';

/** Which model version answers predictions; the header shows it on every page. */
export interface ServingState {
  info: Ref<ServingInfo | null>;
  problem: Ref<ApiProblem | null>;
  refresh(): Promise<void>;
}

export const TOKEN: InjectionKey<Ref<string>> = Symbol('token');
export const ROUTER: InjectionKey<HashRouter> = Symbol('router');
export const SERVING: InjectionKey<ServingState> = Symbol('serving');
export const OPEN_TOKEN_DIALOG: InjectionKey<() => void> = Symbol('open-token-dialog');

function required<T>(key: InjectionKey<T>): T {
  const value = inject(key);
  if (value === undefined) throw new Error(`${String(key.description)} was not provided`);
  return value;
}

export const useToken = () => required(TOKEN);
export const useRouter = () => required(ROUTER);
export const useServing = () => required(SERVING);
export const useOpenTokenDialog = () => required(OPEN_TOKEN_DIALOG);

/** Polls `serving` every few seconds, so a promotion made elsewhere shows up too. */
export function createServingState(client: Client, intervalMs = 5000): ServingState {
  const info = ref<ServingInfo | null>(null);
  const problem = ref<ApiProblem | null>(null);
  const refresh = async () => {
    const result = await client
      .query(SERVING_QUERY, {}, { requestPolicy: 'network-only' })
      .toPromise();
    if (result.error) problem.value = toApiProblem(result.error);
    else if (result.data) {
      info.value = result.data.serving;
      problem.value = null;
    }
  };
  void refresh();
  const timer = window.setInterval(() => void refresh(), intervalMs);
  onBeforeUnmount(() => window.clearInterval(timer));
  return { info, problem, refresh };
}
