import util from 'node:util';
import { MenagerieError } from '../core/errors.js';

/** The tfjs-node module as `loadTensorflow` returns it; use this type, not `typeof import * as tf`. */
export type Tf = typeof import('@tensorflow/tfjs-node');

let loaded: Promise<Tf> | undefined;

/**
 * @tensorflow/tfjs-node on native libtensorflow, or a TF_BACKEND_UNAVAILABLE error: never
 * the pure-JS backend, which is hundreds of times slower, in silence.
 *
 * ```ts
 * const tf = await loadTensorflow();
 * tf.tidy(() => tf.ones([2, 2]).sum().print());
 * ```
 */
export function loadTensorflow(): Promise<Tf> {
  loaded ??= (async () => {
    process.env.TF_CPP_MIN_LOG_LEVEL ??= '2';
    restoreRemovedUtil();
    let tf: Tf;
    try {
      tf = await import('@tensorflow/tfjs-node');
    } catch (error) {
      throw new MenagerieError(
        'TF_BACKEND_UNAVAILABLE',
        `@tensorflow/tfjs-node did not load (${String(error).split('\n')[0]}); run \`npm run setup\``,
        { cause: error },
      );
    }
    if (tf.getBackend() !== 'tensorflow') {
      throw new MenagerieError(
        'TF_BACKEND_UNAVAILABLE',
        `TensorFlow.js backend is '${tf.getBackend()}', expected native 'tensorflow'; run \`npm run setup\``,
      );
    }
    return tf;
  })();
  return loaded;
}

/** The native library's version, e.g. '2.21.0'. */
export async function tensorflowVersion(): Promise<string> {
  const tf = await loadTensorflow();
  const backend = tf.backend() as unknown as { binding: { TF_Version: string } };
  return backend.binding.TF_Version;
}

/**
 * tfjs-node 4.22 calls `util.isNullOrUndefined` (removed in Node 23) and `util.isArray`
 * (deprecated, next to go) on every op with a list of outputs; put back the originals'
 * one-line definitions where this Node lacks them. scripts/setup.mjs does the same before its
 * probe. Drop this when tfjs-node stops calling them.
 */
function restoreRemovedUtil(): void {
  const legacy = util as unknown as Record<string, unknown>;
  legacy.isNullOrUndefined ??= (value: unknown) => value === null || value === undefined;
  legacy.isArray ??= Array.isArray;
}
