import type * as TfNode from '@tensorflow/tfjs-node';

/**
 * `tf.tidy(fn)`, then the values of the tensors `fn` returned, read once tidy is done.
 * Reading them inside (returning typed arrays from tidy) costs: tidy walks every element of
 * what it returns in search of tensors, 4–5 ms for 49,152 values.
 *
 * ```ts
 * const [probabilities] = tidyRead(tf, () => [model.predict(xs) as TfNode.Tensor]);
 * ```
 */
export function tidyRead<const T extends readonly TfNode.Tensor[]>(
  tf: Pick<typeof TfNode, 'tidy'>,
  fn: () => T,
): { [K in keyof T]: Float32Array } {
  const tensors = tf.tidy(() => [...fn()]);
  try {
    // Float32 for the tensors most callers read; an int32 one (a decoded JPEG) comes as
    // Int32Array, which they copy into bytes as they would floats.
    return tensors.map((t) => t.dataSync() as Float32Array) as { [K in keyof T]: Float32Array };
  } finally {
    for (const t of tensors) t.dispose();
  }
}
