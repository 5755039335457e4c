/**
 * Every lifetime operation whose reply is lost (the reply-dropping proxy: the
 * script runs, its reply is thrown away, the connection is cut, ioredis
 * resends it and it runs again) gives the caller what it gives without the
 * fault and leaves the same Redis state: creation, put and putBatch under a
 * lifetime, addKey, addProxy, extend (first step and later chunks), every
 * step of close, and the StaticLifetime heartbeat. Single Redis only (the
 * proxy stands in front of one server); the Cluster way of foreign members
 * is exercised here with `foreignInScript: false`.
 */
import {
  ContextLifetime,
  LeaseLifetime,
  StaticLifetime,
  type Lifetime,
  type Store,
} from '../../src/index.js';
import { STATIC_MARGIN_LEASES, endedTtlMs, lifetimeTuning, type LifetimeRecord } from '../../src/lifetimes/base.js';
import { kResetStatic } from '../../src/lifetimes/static.js';
import { afterEach, deleteNamespaceKeys, describe, expect, test } from '../harness/fixtures.js';
import { startReplyDropper } from '../harness/reply-dropper.js';
import { waitUntil } from '../lifetimes/util.js';
import { RECONNECT_MS, TOLERANCE_MS, expectResendSafe, scriptCall, sentTimes, serverNow, storeThrough } from './util.js';

const tuning = { ...lifetimeTuning };
afterEach(() => {
  Object.assign(lifetimeTuning, tuning);
});

type Kind = 'context' | 'lease';
const KINDS: Kind[] = ['context', 'lease'];

function make(kind: Kind, store: Store): Promise<ContextLifetime> {
  const lifetime = kind === 'lease' ? new LeaseLifetime(store, { expiry: 30, name: 'resent' }) : new ContextLifetime(store, { name: 'resent' });
  return lifetime.waitUntilReady();
}

describe('lifetime creation', () => {
  test.for(KINDS)('a %s lifetime whose creation reply is lost is created once, usable, as without the fault', async (kind, { redis, redisUrl, namespace }) => {
    await expectResendSafe(
      { redis, redisUrl, namespace },
      {
        setup: async () => undefined,
        op: async (store) => {
          const lifetime = await make(kind, store);
          // The handle works: the resend did not leave it refused.
          await store.put('after creation', { lifetime });
          return lifetime;
        },
        seen: (lifetime) => lifetime.constructor.name,
        drop: () => scriptCall('lifetimeCreate'),
      },
    );
  });
});

describe('put under a lifetime', () => {
  test.for(KINDS)('put with a %s lifetime whose reply is lost stores the object once', async (kind, { redis, redisUrl, namespace }) => {
    await expectResendSafe(
      { redis, redisUrl, namespace },
      {
        setup: (store) => make(kind, store),
        op: (store, lifetime) => store.put({ n: 1 }, { lifetime }),
        seen: (key, lifetime) => key.startsWith(`${lifetime.id}~`),
        drop: () => scriptCall('lifetimePut'),
      },
    );
  });

  test.for(KINDS)('putBatch with a %s lifetime whose reply is lost stores each object once', async (kind, { redis, redisUrl, namespace }) => {
    await expectResendSafe(
      { redis, redisUrl, namespace },
      {
        setup: (store) => make(kind, store),
        op: (store, lifetime) => store.putBatch([1, 'two', { three: 3 }], { lifetime }),
        seen: (keys) => keys.length,
        drop: () => scriptCall('lifetimePut'),
      },
    );
  });
});

describe('adding to a lifetime', () => {
  for (const foreignInScript of [true, false]) {
    const how = foreignInScript ? 'in the script' : 'the Cluster way';
    test.for(KINDS)(`addKey to a %s lifetime whose reply is lost (foreign keys ${how})`, async (kind, { redis, redisUrl, namespace }) => {
      lifetimeTuning.foreignInScript = foreignInScript;
      await expectResendSafe(
        { redis, redisUrl, namespace },
        {
          setup: async (store) => ({ lifetime: await make(kind, store), keys: await store.putBatch(['a', 'b']) }),
          op: (store, s) => s.lifetime.addKey(...s.keys),
          drop: () => scriptCall('lifetimeAddKeys'),
        },
      );
    });
  }

  test.for(KINDS)('addProxy to a %s lifetime whose reply is lost', async (kind, { redis, redisUrl, namespace }) => {
    await expectResendSafe(
      { redis, redisUrl, namespace },
      {
        setup: async (store) => ({ lifetime: await make(kind, store), proxy: await store.proxy([1, 2, 3]) }),
        op: (store, s) => s.lifetime.addProxy(s.proxy),
        drop: () => scriptCall('lifetimeAddKeys'),
      },
    );
  });
});

describe('extend', () => {
  async function filled(store: Store): Promise<LeaseLifetime> {
    const lifetime = (await make('lease', store)) as LeaseLifetime;
    await store.putBatch([1, 2, 3, 4, 5], { lifetime });
    await lifetime.addKey(...(await store.putBatch(['f1', 'f2'])));
    return lifetime;
  }

  test('extend(60) whose reply is lost moves the lease by 60 s, not 120 s', async ({ redis, redisUrl, namespace }) => {
    await expectResendSafe(
      { redis, redisUrl, namespace },
      { setup: filled, op: (store, lifetime) => lifetime.extend(60), drop: () => scriptCall('lifetimeExtend') },
    );
  });

  test('extend(date) whose reply is lost sets the same end', async ({ redis, redisUrl, namespace }) => {
    await expectResendSafe(
      { redis, redisUrl, namespace },
      { setup: filled, op: (store, lifetime) => lifetime.extend(new Date(Date.now() + 90_000)), drop: () => scriptCall('lifetimeExtend') },
    );
  });

  test('an extend into the past whose reply is lost closes the lifetime once', async ({ redis, redisUrl, namespace }) => {
    await expectResendSafe(
      { redis, redisUrl, namespace },
      {
        setup: filled,
        op: (store, lifetime) => lifetime.extend(new Date(Date.now() - 1000)),
        drop: () => scriptCall('lifetimeExtend'),
        // The close that follows runs one reconnect later: so does its 'ended' marker (plus its
        // steps' own round trips, which a loaded CI machine stretches).
        slack: RECONNECT_MS + 800,
      },
    );
  });

  // Sets of up to 128 members are listpacks, which SSCAN returns whole: 250 members walk in chunks.
  async function large(store: Store): Promise<LeaseLifetime> {
    const lifetime = (await make('lease', store)) as LeaseLifetime;
    await store.putBatch(Array.from({ length: 250 }, (_, i) => i), { lifetime });
    await lifetime.addKey(...(await store.putBatch(['f1', 'f2'])));
    return lifetime;
  }

  for (const foreignInScript of [true, false]) {
    test.for([1, 2])(
      `a chunked extend whose chunk %i reply is lost gives every member the same end (foreign keys ${foreignInScript ? 'in the script' : 'the Cluster way'})`,
      async (nth, { redis, redisUrl, namespace }) => {
        lifetimeTuning.chunk = 100;
        lifetimeTuning.foreignInScript = foreignInScript;
        await expectResendSafe(
          { redis, redisUrl, namespace },
          { setup: large, op: (store, lifetime) => lifetime.extend(60), drop: () => scriptCall('lifetimeExpireChunk', nth) },
        );
      },
    );
  }
});

/** The Redis side of a lifetime handle (its close steps report what they did). */
function recordOf(lifetime: ContextLifetime): LifetimeRecord {
  return (lifetime as unknown as { record: LifetimeRecord }).record;
}

describe('close', () => {
  // Five own members and two foreign ones, two per step: four steps.
  async function filled(kind: Kind, store: Store): Promise<ContextLifetime> {
    const lifetime = await make(kind, store);
    await store.putBatch([1, 2, 3, 4, 5], { lifetime });
    await lifetime.addKey(...(await store.putBatch(['f1', 'f2'])));
    return lifetime;
  }

  for (const foreignInScript of [true, false]) {
    for (const kind of KINDS) {
      test.for([1, 2, 3, 4])(
        `closing a ${kind} lifetime whose step %i reply is lost evicts everything once and ends it (foreign keys ${foreignInScript ? 'in the script' : 'the Cluster way'})`,
        async (nth, { redis, redisUrl, namespace }) => {
          lifetimeTuning.chunk = 2;
          lifetimeTuning.foreignInScript = foreignInScript;
          await expectResendSafe(
            { redis, redisUrl, namespace },
            {
              setup: (store) => filled(kind, store),
              op: async (store, lifetime) => {
                // The close's own account (what lifetime.close() logs): evicted in all, and the state its first step found.
                const result = await recordOf(lifetime).close(endedTtlMs(store));
                await lifetime.close(); // the handle learns it; Redis has it ended already
                return { ...result, done: await lifetime.done() };
              },
              drop: () => scriptCall('lifetimeClose', nth),
              // The steps after the lost reply run one reconnect later: so does the 'ended' marker.
              slack: RECONNECT_MS + 800,
            },
          );
        },
      );
    }
  }
});

describe('the StaticLifetime heartbeat', () => {
  afterEach(async () => {
    await StaticLifetime.instance().close();
    StaticLifetime[kResetStatic]();
  });

  test('a heartbeat whose reply is lost keeps the lease end of its first run', async ({ redis, redisUrl, namespace }) => {
    const dropper = await startReplyDropper(redisUrl);
    // Heartbeats every 3 s; the resend comes RECONNECT_MS after the first run.
    const store = storeThrough(dropper, namespace, { leaseTtl: 9 });
    try {
      const lifetime: Lifetime = StaticLifetime.instance();
      const key = await store.put('static', { lifetime });
      const meta = store.connector.keys.lifetime('lt', StaticLifetime.instance().idIn(store) as string);
      const cmd = await dropper.dropNextReply(scriptCall('lifetimeExtend'));
      const firstRunAt = await serverNow(redis);
      await waitUntil(async () => sentTimes(dropper, cmd) >= 2, 'the heartbeat is resent');
      // The resend ran (Redis runs a command as soon as it has it); the next beat is ~2 s away.
      await new Promise((r) => setTimeout(r, 200));
      const [extend, expiresAt] = await redis.hmget(meta, 'extend', 'expiresAt');
      // Applied once: by the dropped call (its token is its last argument), counted from its first run.
      expect(extend).toBe(`${cmd.args[cmd.args.length - 1]} ${expiresAt}`);
      const end = Number(expiresAt);
      expect(end - firstRunAt).toBeLessThan(9000 + TOLERANCE_MS);
      expect(end - firstRunAt).toBeGreaterThan(9000 - RECONNECT_MS);
      // The keys carry the lease end plus the outage margin (STATIC_MARGIN_LEASES leases).
      expect(await redis.pexpiretime(store.connector.dataKey(key))).toBe(end + STATIC_MARGIN_LEASES * 9000);
      expect(await redis.pexpiretime(meta)).toBe(end + STATIC_MARGIN_LEASES * 9000);
    } finally {
      await store.close();
      await dropper.close();
      await deleteNamespaceKeys(redis, namespace);
    }
  });
});

describe('puts with rules whose reply is lost', () => {
  test('put under a lease with reads and a ttl: the resend keeps the own end its first run recorded', async ({ redis, redisUrl, namespace }) => {
    await expectResendSafe({ redis, redisUrl, namespace }, {
      setup: async (store) => new LeaseLifetime(store, { expiry: 600 }).waitUntilReady(),
      op: async (store, lifetime) => {
        await store.putBatch(['a', 'b'], { lifetime, reads: 2, ttl: 60 });
      },
      drop: () => scriptCall('lifetimePut'),
      cleanup: (_store, lifetime) => lifetime.close(),
    });
  });

  test('a put with reads and a ttl (no lifetime): the resend changes nothing, its ttl is not counted again', async ({ redis, redisUrl, namespace }) => {
    await expectResendSafe({ redis, redisUrl, namespace }, {
      setup: async () => undefined,
      op: async (store) => {
        await store.put('budget', { reads: 4, ttl: 60 });
      },
      drop: () => scriptCall('objectPut'),
    });
  });

  test('addKey of an object with a ttl to a lease: the resend records nothing more', async ({ redis, redisUrl, namespace }) => {
    await expectResendSafe({ redis, redisUrl, namespace }, {
      setup: async (store) => ({ lifetime: await new LeaseLifetime(store, { expiry: 600 }).waitUntilReady(), key: await store.put('own end', { ttl: 60 }) }),
      op: (store, { lifetime, key }) => lifetime.addKey(key),
      drop: () => scriptCall('lifetimeAddKeys'),
      cleanup: (_store, { lifetime }) => lifetime.close(),
    });
  });
});
