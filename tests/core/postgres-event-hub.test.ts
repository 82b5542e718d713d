import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createPostgresEventHub, type PostgresEventHub } from '../../core/postgres-event-hub.js';
import { DATABASE_BACKENDS, SERVICE_START_TIMEOUT, serviceEnv } from '../helpers/backends.js';

interface Events {
  tick: { n: number };
  big: string;
}

// Two hubs stand for two replicas without Redis: what either publishes, both deliver.
describe.runIf(DATABASE_BACKENDS.includes('postgres'))('the PostgreSQL event hub', () => {
  const channel = `t${randomBytes(4).toString('hex')}`;
  const errors: Error[] = [];
  let a: PostgresEventHub<Events>;
  let b: PostgresEventHub<Events>;
  beforeAll(async () => {
    const connectionString = (await serviceEnv('postgres')).MENAGERIE_DATABASE_URL!;
    a = createPostgresEventHub<Events>({
      connectionString,
      channel,
      onError: (e) => errors.push(e),
    });
    b = createPostgresEventHub<Events>({ connectionString, channel });
    await Promise.all([a.ready(), b.ready()]);
  }, SERVICE_START_TIMEOUT);
  afterAll(async () => {
    await Promise.all([a?.close(), b?.close()]);
  });

  it('delivers every publish to every hub’s subscribers', async () => {
    const onA = a.subscribe('tick');
    const onB = b.subscribe('tick');
    for (let n = 0; n < 50; n++) (n % 2 ? a : b).publish('tick', { n });
    for (const iterator of [onA, onB]) {
      const seen: number[] = [];
      for (let i = 0; i < 50; i++) seen.push(((await iterator.next()).value as { n: number }).n);
      expect([...seen].sort((x, y) => x - y)).toEqual(Array.from({ length: 50 }, (_, n) => n));
    }
    await Promise.all([onA.return?.(), onB.return?.()]);
  });

  it('refuses a payload over NOTIFY’s 8,000 bytes, saying so', async () => {
    a.publish('big', 'x'.repeat(8000));
    expect(errors.at(-1)?.message).toMatch(/big event of \d+ bytes is over NOTIFY's limit/);
  });
});
