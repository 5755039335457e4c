/**
 * Deduped objects (dedupe: true) whose script replies are lost: ioredis
 * resends the call, which must add or take no second reference. Each
 * scenario runs plainly and with the reply lost; the caller's result and
 * Redis's state (normalized) must be the same. Single Redis only (the
 * reply-dropping proxy stands in front of one server).
 */
import { ContextLifetime } from '../../src/index.js';
import { describe, expect, test } from '../harness/fixtures.js';
import { expectResendSafe, scriptCall } from './util.js';

const BIG = Buffer.alloc(200 * 1024, 9);

describe('a deduped put or evict whose reply is lost', () => {
  test('a put of equal bytes (one call with the bytes) adds one reference, not two', async ({ redis, redisUrl, namespace }) => {
    const { faulted } = await expectResendSafe({ redis, redisUrl, namespace }, {
      setup: (store) => store.put({ shared: 1 }, { dedupe: true }),
      op: (store) => store.put({ shared: 1 }, { dedupe: true, ttl: 60 }),
      drop: () => scriptCall('dedupePut'),
    });
    expect(faulted).toMatch(/^sha256\./);
  });

  test('the first put of new bytes writes the object with one reference', async ({ redis, redisUrl, namespace }) => {
    await expectResendSafe({ redis, redisUrl, namespace }, {
      setup: async () => undefined,
      op: (store) => store.put('fresh', { dedupe: true }),
      drop: () => scriptCall('dedupePut'),
    });
  });

  test('a large put of equal bytes (offered by hash alone) adds one reference, not two', async ({ redis, redisUrl, namespace }) => {
    await expectResendSafe({ redis, redisUrl, namespace }, {
      setup: (store) => store.put(BIG, { dedupe: true }),
      op: (store) => store.put(BIG, { dedupe: true }),
      drop: () => scriptCall('dedupeAdd'),
    });
  });

  test('an evict takes one reference, not two (its token is in the object\'s done set)', async ({ redis, redisUrl, namespace }) => {
    await expectResendSafe({ redis, redisUrl, namespace }, {
      setup: async (store) => {
        for (let i = 0; i < 3; i++) await store.put('thrice', { dedupe: true });
        return store.put('thrice', { dedupe: true });
      },
      op: async (store, key) => {
        await store.evict(key);
        return (await redis.zcard(store.connector.keys.object('refs', key)));
      },
      drop: () => scriptCall('dedupeEvict'),
    });
  });

  test('a lifetime close releases its reference once: the object stays for its other holder', async ({ redis, redisUrl, namespace }) => {
    await expectResendSafe({ redis, redisUrl, namespace }, {
      setup: async (store) => {
        const lifetime = new ContextLifetime(store);
        const key = await store.put('held twice', { dedupe: true, lifetime });
        await store.put('held twice', { dedupe: true });
        return { lifetime, key };
      },
      op: async (store, { lifetime, key }) => {
        await lifetime.close();
        return store.get(key);
      },
      seen: (value) => value,
      drop: () => scriptCall('dedupeHolder'),
      // The close's 'ended' marker is written one reconnect later.
      slack: 1500,
    });
  });
});
