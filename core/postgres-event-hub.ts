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
 * its own listens, and listens again when the connection is lost (a database restart);
 * publishes go through a small pool. Payloads must stay under 8,000 bytes
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
  /** Errors, and each loss of the listening connection (it reconnects on its own). */
  onError?: (error: Error) => void;
  /** First pause before listening again after the connection is lost (default 500 ms). */
  reconnectMs?: number;
  /** Longest pause between attempts; each failed one doubles it up to this (default 10 s). */
  maxReconnectMs?: number;
}): PostgresEventHub<TEvents> {
  const channel = options.channel ?? 'menagerie_events';
  if (!/^[a-z_][a-z0-9_]{0,62}$/.test(channel)) {
    throw new Error(`channel should be a lower-case SQL identifier, got '${channel}'`);
  }
  const local = createEventHub<TEvents>();
  const report = (error: Error) => options.onError?.(error);
  const pool = new pg.Pool({ connectionString: options.connectionString, max: 2 });
  pool.on('error', report);
  const retry = { first: options.reconnectMs ?? 500, max: options.maxReconnectMs ?? 10_000 };
  let closed = false;
  let listener: pg.Client | null = null;
  let timer: NodeJS.Timeout | null = null;
  let delay = retry.first;
  let resolveReady!: () => void;
  let rejectReady!: (error: Error) => void;
  let everListened = false;
  const listening = new Promise<void>((resolve, reject) => {
    resolveReady = resolve;
    rejectReady = reject;
  });
  listening.catch(() => {}); // said by ready(), to whoever asks

  const deliver = (message: pg.Notification) => {
    if (message.channel !== channel || message.payload === undefined) return;
    let event: { topic: keyof TEvents & string; payload: never };
    try {
      event = JSON.parse(message.payload) as typeof event;
    } catch {
      return;
    }
    local.publish(event.topic, event.payload);
  };

  /**
   * One listening connection; when it fails or the server ends it (a restart, a
   * terminated backend), another is opened after a growing pause, so subscribers keep
   * receiving. Notifications sent while no connection listened are lost: NOTIFY keeps none.
   */
  const listen = () => {
    timer = null;
    if (closed) return;
    const client = new pg.Client({ connectionString: options.connectionString });
    listener = client;
    let lost = false;
    const reconnect = (error?: Error) => {
      if (lost) return;
      lost = true;
      client.removeAllListeners('notification');
      void client.end().catch(() => {});
      if (closed) return;
      if (!everListened) {
        // The first connection failing is a configuration error: said by ready(), not retried.
        closed = true;
        rejectReady(error ?? new Error('PostgreSQL ended the connection before LISTEN'));
        return;
      }
      report(
        new Error(
          `the event listener lost PostgreSQL (${error?.message ?? 'connection ended'}); ` +
            `listening again in ${delay} ms`,
          { cause: error },
        ),
      );
      timer = setTimeout(listen, delay);
      delay = Math.min(delay * 2, retry.max);
    };
    client.on('error', reconnect);
    client.on('end', () => reconnect());
    client.on('notification', deliver);
    client
      .connect()
      .then(() => client.query(`LISTEN ${channel}`))
      .then(() => {
        everListened = true;
        delay = retry.first;
        resolveReady();
      })
      .catch(reconnect);
  };
  listen();

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
      closed = true;
      if (timer) clearTimeout(timer);
      resolveReady();
      await Promise.allSettled([listener?.end(), pool.end()]);
    },
  };
}
