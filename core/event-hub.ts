import { EventEmitter, on } from 'node:events';

/**
 * In-process publish/subscribe for GraphQL subscriptions: typed topics, one async
 * iterator per subscriber, cleaned up when the subscriber leaves. A multi-process
 * deployment would put Redis or PostgreSQL NOTIFY behind the same interface.
 *
 * ```ts
 * const hub = createEventHub<{ tick: number }>();
 * const ticks = hub.subscribe('tick');
 * hub.publish('tick', 1);
 * (await ticks.next()).value; // 1
 * ```
 */
export interface EventHub<TEvents> {
  publish<K extends keyof TEvents & string>(topic: K, payload: TEvents[K]): void;
  subscribe<K extends keyof TEvents & string>(topic: K): AsyncIterableIterator<TEvents[K]>;
}

export function createEventHub<TEvents>(): EventHub<TEvents> {
  const emitter = new EventEmitter();
  emitter.setMaxListeners(0);
  return {
    publish(topic, payload) {
      emitter.emit(topic, payload);
    },
    subscribe<K extends keyof TEvents & string>(topic: K) {
      // A hand-written iterator, not an async generator: a generator's return() waits for
      // the pending next(), so a subscriber leaving an idle topic would never be released.
      const events = on(emitter, topic);
      const iterator: AsyncIterableIterator<TEvents[K]> = {
        async next() {
          const result = await events.next();
          return result.done
            ? { done: true, value: undefined }
            : { done: false, value: (result.value as [TEvents[K]])[0] };
        },
        async return() {
          await events.return?.();
          return { done: true, value: undefined };
        },
        [Symbol.asyncIterator]() {
          return iterator;
        },
      };
      return iterator;
    },
  };
}
