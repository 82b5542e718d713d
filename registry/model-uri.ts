import { excerpt, MenagerieError } from '../core/errors.js';
import type { ModelStage } from '../data/tables.js';
import { parseStage, validateAlias, validateModelName } from './model-names.js';

/** What a `models:/` URI points at, before it is looked up. */
export type ModelUriTarget =
  | { kind: 'version'; name: string; version: number }
  | { kind: 'alias'; name: string; alias: string }
  | { kind: 'stage'; name: string; stage: ModelStage }
  | { kind: 'latest'; name: string };

/**
 * Parses MLflow's model URI forms. Stages and `latest` match in any case, as in MLflow.
 *
 * ```ts
 * import { parseModelUri } from './registry/model-uri.js';
 * parseModelUri('models:/faces@champion'); // { kind: 'alias', name: 'faces', alias: 'champion' }
 * parseModelUri('models:/faces/3');        // { kind: 'version', name: 'faces', version: 3 }
 * parseModelUri('models:/faces/production'); // { kind: 'stage', name: 'faces', stage: 'Production' }
 * ```
 */
export function parseModelUri(uri: string): ModelUriTarget {
  const invalid = (why: string) =>
    new MenagerieError(
      'MODEL_URI_INVALID',
      `'${excerpt(uri)}' is not a model URI (${why}); expected models:/<name>/<version>, ` +
        'models:/<name>/<stage>, models:/<name>/latest or models:/<name>@<alias>',
    );
  if (typeof uri !== 'string' || !uri.startsWith('models:/')) throw invalid("no 'models:/'");
  const rest = uri.slice('models:/'.length);
  const rethrow = (check: () => void, why: string) => {
    try {
      check();
    } catch {
      throw invalid(why);
    }
  };
  const at = rest.indexOf('@');
  if (at >= 0) {
    const name = rest.slice(0, at);
    const alias = rest.slice(at + 1);
    rethrow(() => validateModelName(name), 'bad model name');
    if (alias.toLowerCase() !== 'latest') rethrow(() => validateAlias(alias), 'bad alias');
    else throw invalid("'latest' is not an alias: write models:/<name>/latest");
    return { kind: 'alias', name, alias };
  }
  const parts = rest.split('/');
  if (parts.length !== 2) throw invalid('expected exactly a name and a version or stage');
  const [name, ref] = parts as [string, string];
  rethrow(() => validateModelName(name), 'bad model name');
  if (/^\d+$/.test(ref)) {
    const version = Number(ref);
    if (!Number.isSafeInteger(version) || version < 1) throw invalid('versions start at 1');
    return { kind: 'version', name, version };
  }
  if (ref.toLowerCase() === 'latest') return { kind: 'latest', name };
  let stage: ModelStage | undefined;
  rethrow(() => (stage = parseStage(ref)), `'${excerpt(ref)}' is neither a version nor a stage`);
  return { kind: 'stage', name, stage: stage! };
}

/**
 * A model reference as people type it, as a `models:/` URI: the URI itself, or the same
 * without its scheme (`faces/3`, `faces@champion`, `faces/production`). Checked by
 * `parseModelUri`, so a bad reference fails with MODEL_URI_INVALID.
 *
 * ```ts
 * modelUriOf('faces@champion'); // 'models:/faces@champion'
 * modelUriOf('models:/faces/3'); // 'models:/faces/3'
 * ```
 */
export function modelUriOf(reference: string): string {
  const uri = reference.startsWith('models:/') ? reference : `models:/${reference}`;
  parseModelUri(uri);
  return uri;
}
