import { Redis } from 'ioredis';
import { createEventHub, type EventHub } from './event-hub.js';

/** An EventHub whose publishes reach every process subscribed to the same Redis. */
export interface RedisEventHub<TEvents> extends EventHub<TEvents> {
  /** Delivers to this process's subscribers only (what another channel already carried). */
  deliver<K extends keyof TEvents & string>(topic: K, payload: TEvents[K]): void;
  /** Resolves once the hub listens on Redis, so nothing published after it is missed. */
  ready(): Promise<void>;
  close(): Promise<void>;
}

/**
 * The EventHub of a scaled-out deployment, over Redis pub/sub: `publish` sends the payload
 * (JSON) on a channel per topic, and every hub on every replica, this one included, hands
 * it to its own subscribers. Two connections, as Redis requires: a subscribing connection
 * can do nothing else.
 *
 * ```ts
 * const hub = createRedisEventHub<{ tick: number }>({ url: 'redis://127.0.0.1:6379' });
 * await hub.ready();
 * const ticks = hub.subscribe('tick');
 * hub.publish('tick', 1); // every replica's `tick` subscribers get 1
 * ```
 */
export function createRedisEventHub<TEvents>(options: {
  url: string;
  /** Channel prefix: deployments sharing one Redis differ here (default `menagerie`). */
  prefix?: string;
  onError?: (error: Error) => void;
}): RedisEventHub<TEvents> {
  const prefix = `${options.prefix ?? 'menagerie'}:events:`;
  const local = createEventHub<TEvents>();
  const connect = () => {
    const client = new Redis(options.url, { maxRetriesPerRequest: null });
    client.on('error', (error: Error) => options.onError?.(error));
    return client;
  };
  const publisher = connect();
  const subscriber = connect();
  // One pattern subscription for every topic: no topic is missed for lack of a subscribe.
  const listening = subscriber.psubscribe(`${prefix}*`).then(() => undefined);
  subscriber.on('pmessage', (_pattern: string, channel: string, message: string) => {
    let payload: unknown;
    try {
      payload = JSON.parse(message);
    } catch {
      return;
    }
    local.publish(channel.slice(prefix.length) as keyof TEvents & string, payload as never);
  });

  return {
    publish(topic, payload) {
      publisher
        .publish(`${prefix}${topic}`, JSON.stringify(payload))
        .catch((error: Error) => options.onError?.(error));
    },
    subscribe: (topic) => local.subscribe(topic),
    deliver: (topic, payload) => local.publish(topic, payload),
    ready: () => listening,
    async close() {
      await Promise.allSettled([publisher.quit(), subscriber.quit()]);
    },
  };
}
