import { MenagerieError } from './errors.js';

/**
 * A time by which a piece of work must be done. `check()` throws REQUEST_TIMEOUT once it
 * has passed; `race(p)` rejects with it at the deadline while `p` is still pending, so a
 * caller is answered on time even when the work it waits for is not (the work itself
 * sees `signal` aborted and may stop). It counts from `startedAt` (a `performance.now()`,
 * default now): a server counts from the request's arrival, so time spent queued behind
 * other work counts too, and an overloaded server sheds what it can no longer answer in
 * time. Checking costs a clock read; the timer exists only once something is raced, and
 * `dispose()` clears it.
 *
 * ```ts
 * import { createDeadline } from './deadline.js';
 * const deadline = createDeadline(1000);
 * deadline.check(); // throws REQUEST_TIMEOUT after 1 s
 * const rows = await deadline.race(slowQuery()); // rejects at 1 s if still pending
 * deadline.dispose();
 * ```
 */
export interface Deadline {
  readonly ms: number;
  /** Aborted (with the REQUEST_TIMEOUT error) once the deadline has passed and was noticed. */
  readonly signal: AbortSignal;
  expired(): boolean;
  /** Throws REQUEST_TIMEOUT once the deadline has passed. */
  check(): void;
  race<T>(work: Promise<T>): Promise<T>;
  dispose(): void;
}

export function createDeadline(
  ms: number,
  options: { what?: string; startedAt?: number } = {},
): Deadline {
  const what = options.what ?? 'the query';
  const at = (options.startedAt ?? performance.now()) + ms;
  const controller = new AbortController();
  const error = () =>
    new MenagerieError('REQUEST_TIMEOUT', `${what} ran past the server's deadline of ${ms} ms`);
  let timer: NodeJS.Timeout | undefined;
  let expiry: Promise<never> | undefined;
  const expire = () => {
    if (!controller.signal.aborted) controller.abort(error());
  };
  const expired = () => {
    if (controller.signal.aborted) return true;
    if (performance.now() < at) return false;
    expire();
    return true;
  };
  return {
    ms,
    signal: controller.signal,
    expired,
    check() {
      if (expired()) throw controller.signal.reason;
    },
    race(work) {
      if (expired()) return Promise.reject(controller.signal.reason as Error);
      expiry ??= new Promise<never>((_, reject) => {
        const fire = () => reject(controller.signal.reason);
        controller.signal.addEventListener('abort', fire, { once: true });
        timer = setTimeout(expire, Math.max(0, at - performance.now()));
        timer.unref();
      });
      // The loser's rejection must not go unhandled once the race is decided.
      expiry.catch(() => {});
      return Promise.race([work, expiry]);
    },
    dispose() {
      clearTimeout(timer);
    },
  };
}
