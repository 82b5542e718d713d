import type { EvaluationSummary } from '../graphql/evaluations.js';

/** What an evaluation ran on, as a person names it: `val split`, `holdout/`, `extra.csv`. */
export function datasetName(dataset: EvaluationSummary['dataset']): string {
  if (dataset.kind === 'SPLIT') return `${dataset.source} split`;
  const name = dataset.source.split('/').filter(Boolean).at(-1) ?? dataset.source;
  return dataset.kind === 'FOLDER' ? `${name}/` : name;
}
