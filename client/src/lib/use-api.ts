import type { AnyVariables, TypedDocumentNode } from '@urql/core';
import { useMutation } from '@urql/vue';
import { computed, ref, type Ref } from 'vue';
import { toApiProblem, type ApiProblem } from '../graphql/api-problem.js';
import type { CombinedError } from '@urql/core';

/** A query error as the dashboard shows it (null while fine). */
export function useProblem(error: Ref<CombinedError | undefined>) {
  return computed<ApiProblem | null>(() => (error.value ? toApiProblem(error.value) : null));
}

/**
 * A mutation with its busy flag and last problem; `run` resolves to the data or null, so
 * callers branch on the result instead of catching.
 */
export function useAction<Data, Variables extends AnyVariables>(
  document: TypedDocumentNode<Data, Variables>,
) {
  const mutation = useMutation<Data, Variables>(document);
  const problem = ref<ApiProblem | null>(null);
  const busy = ref(false);
  async function run(variables: Variables): Promise<Data | null> {
    busy.value = true;
    problem.value = null;
    try {
      const result = await mutation.executeMutation(variables);
      if (result.error) {
        problem.value = toApiProblem(result.error);
        return null;
      }
      return result.data ?? null;
    } finally {
      busy.value = false;
    }
  }
  return { run, busy, problem };
}
