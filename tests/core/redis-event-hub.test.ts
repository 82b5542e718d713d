import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createRedisEventHub, type RedisEventHub } from '../../core/redis-event-hub.js';
import { SERVICE_START_TIMEOUT, serviceEnv } from '../helpers/backends.js';

interface Events {
  tick: { n: number };
  other: string;
}

// Two hubs stand for two replicas: what either publishes, both deliver, in order.
describe('the Redis event hub', () => {
  const prefix = `t${randomBytes(4).toString('hex')}`;
  let a: RedisEventHub<Events>;
  let b: RedisEventHub<Events>;
  beforeAll(async () => {
    const url = (await serviceEnv('redis')).MENAGERIE_QUEUE_URL!;
    a = createRedisEventHub<Events>({ url, prefix });
    b = createRedisEventHub<Events>({ url, prefix });
    await Promise.all([a.ready(), b.ready()]);
  }, SERVICE_START_TIMEOUT);
  afterAll(async () => {
    await Promise.all([a?.close(), b?.close()]);
  });

  it('delivers every publish to every hub’s subscribers, each publisher’s in order, per topic', async () => {
    const onA = a.subscribe('tick');
    const onB = b.subscribe('tick');
    const others = b.subscribe('other');
    for (let n = 0; n < 100; n++) (n % 2 ? a : b).publish('tick', { n });
    a.publish('other', 'hello');
    for (const iterator of [onA, onB]) {
      const seen: number[] = [];
      for (let i = 0; i < 100; i++) seen.push(((await iterator.next()).value as { n: number }).n);
      // All of them; each publisher's in its order (two connections are not ordered together).
      expect([...seen].sort((x, y) => x - y)).toEqual(Array.from({ length: 100 }, (_, n) => n));
      for (const parity of [0, 1]) {
        const mine = seen.filter((n) => n % 2 === parity);
        expect(mine).toEqual([...mine].sort((x, y) => x - y));
      }
    }
    expect((await others.next()).value).toBe('hello');
    await Promise.all([onA.return?.(), onB.return?.(), others.return?.()]);
  });

  it('delivers locally only what deliver() is given', async () => {
    const onA = a.subscribe('other');
    const onB = b.subscribe('other');
    b.deliver('other', 'just b');
    a.publish('other', 'everyone');
    expect((await onB.next()).value).toBe('just b');
    expect((await onB.next()).value).toBe('everyone');
    expect((await onA.next()).value).toBe('everyone');
    await Promise.all([onA.return?.(), onB.return?.()]);
  });
});
