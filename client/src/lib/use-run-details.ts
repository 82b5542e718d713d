import { useClientHandle } from '@urql/vue';
import { ref, watch, type Ref } from 'vue';
import { toApiProblem, type ApiProblem } from '../graphql/api-problem.js';
import { RUN_DETAIL_QUERY, type RunDetail } from '../graphql/tracking.js';

/**
 * Details of a changing set of runs, each with the history of one metric: one query per
 * run, since GraphQL cannot alias a variable-length list of fields.
 */
export function useRunDetails(ids: Ref<readonly string[]>, metricKey: Ref<string>) {
  const { client } = useClientHandle();
  const details = ref<RunDetail[]>([]);
  const problem = ref<ApiProblem | null>(null);
  const loading = ref(false);
  let generation = 0;

  watch(
    [ids, metricKey],
    async () => {
      const mine = ++generation;
      if (ids.value.length === 0) {
        details.value = [];
        problem.value = null;
        return;
      }
      loading.value = true;
      const results = await Promise.all(
        ids.value.map((id) =>
          client
            .query(
              RUN_DETAIL_QUERY,
              { id, key: metricKey.value },
              { requestPolicy: 'network-only' },
            )
            .toPromise(),
        ),
      );
      if (mine !== generation) return;
      loading.value = false;
      const failed = results.find((r) => r.error);
      problem.value = failed?.error ? toApiProblem(failed.error) : null;
      details.value = results.flatMap((r) => (r.data?.run ? [r.data.run] : []));
    },
    { immediate: true },
  );
  return { details, problem, loading };
}
