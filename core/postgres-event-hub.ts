import pg from 'pg';
import { createEventHub, type EventHub } from './event-hub.js';

/** PostgreSQL refuses a NOTIFY payload of 8,000 bytes or more. */
export const MAX_NOTIFY_BYTES = 7999;

/** An EventHub whose publishes reach every process listening on the same database. */
export interface PostgresEventHub<TEvents> extends EventHub<TEvents> {
  /** Resolves once the hub listens, so nothing published after it is missed. */
  ready(): Promise<void>;
  close(): Promise<void>;
}

/**
 * The EventHub of a deployment without Redis, over PostgreSQL LISTEN/NOTIFY: `publish`
 * sends `{ topic, payload }` (JSON) with `pg_notify` on one channel, and every hub
 * listening on it, this one included, hands it to its own subscribers. One connection of
 * its own listens; publishes go through a small pool. Payloads must stay under 8,000 bytes
 * (send ids, not rows): a bigger one is refused through `onError`, not truncated.
 *
 * ```ts
 * const hub = createPostgresEventHub<{ tick: number }>({ connectionString: process.env.MENAGERIE_DATABASE_URL! });
 * await hub.ready();
 * const ticks = hub.subscribe('tick');
 * hub.publish('tick', 1); // every replica's `tick` subscribers get 1
 * ```
 */
export function createPostgresEventHub<TEvents>(options: {
  connectionString: string;
  /** Channel name (default `menagerie_events`): deployments sharing one database differ here. */
  channel?: string;
  onError?: (error: Error) => void;
}): PostgresEventHub<TEvents> {
  const channel = options.channel ?? 'menagerie_events';
  if (!/^[a-z_][a-z0-9_]{0,62}$/.test(channel)) {
    throw new Error(`channel should be a lower-case SQL identifier, got '${channel}'`);
  }
  const local = createEventHub<TEvents>();
  const report = (error: Error) => options.onError?.(error);
  const listener = new pg.Client({ connectionString: options.connectionString });
  const pool = new pg.Pool({ connectionString: options.connectionString, max: 2 });
  listener.on('error', report);
  pool.on('error', report);
  listener.on('notification', (message) => {
    if (message.channel !== channel || message.payload === undefined) return;
    let event: { topic: keyof TEvents & string; payload: never };
    try {
      event = JSON.parse(message.payload) as typeof event;
    } catch {
      return;
    }
    local.publish(event.topic, event.payload);
  });
  const listening = listener
    .connect()
    .then(() => listener.query(`LISTEN ${channel}`))
    .then(() => undefined);

  return {
    publish(topic, payload) {
      const text = JSON.stringify({ topic, payload });
      const bytes = Buffer.byteLength(text);
      if (bytes > MAX_NOTIFY_BYTES) {
        report(new Error(`a ${topic} event of ${bytes} bytes is over NOTIFY's limit; send ids`));
        return;
      }
      pool.query('select pg_notify($1, $2)', [channel, text]).catch(report);
    },
    subscribe: (topic) => local.subscribe(topic),
    ready: () => listening,
    async close() {
      await Promise.allSettled([listener.end(), pool.end()]);
    },
  };
}
