/**
 * Waits for an event the test can observe but not subscribe to: resolves with the first
 * truthy value `condition` returns, checking it every few milliseconds. The deadline only
 * turns a hang into a failure that names `what`; nothing passes by running out the clock.
 *
 * ```ts
 * import { waitFor } from '../helpers/wait-for.js';
 *
 * const line = await waitFor(() => logs.find((l) => l.requestId === id), 'its log line');
 * ```
 */
export async function waitFor<T>(
  condition: () => T | undefined | null | false | Promise<T | undefined | null | false>,
  what: string,
  guardMs = 30_000,
): Promise<T> {
  const deadline = performance.now() + guardMs;
  for (;;) {
    const value = await condition();
    if (value) return value;
    if (performance.now() > deadline)
      throw new Error(`still waiting for ${what} after ${guardMs} ms`);
    await new Promise((resolve) => setTimeout(resolve, 2));
  }
}
