/**
 * Two stores with different namespaces on one Redis cannot read, evict or
 * resolve each other's objects, whatever keys and refs an attacker crafts.
 *
 * The victim's namespace is `<attacker namespace>:victim`, the hardest case:
 * the attacker's namespace is a prefix of it. The victim is not registered in
 * this process (it stands for another process), and after every attack the
 * raw client proves its keys, bytes and TTLs are untouched.
 */
import type { Redis } from 'ioredis';
import fc from 'fast-check';
import {
  ENV_NAMESPACE,
  ENV_URL,
  ProxyResolveMissingKeyError,
  ProxyStoreError,
  ProxyStoreFactoryError,
  RedisConnector,
  Store,
  fromRef,
  getStore,
  isProxy,
  resolve,
  toRef,
  type ProxyRef,
} from '../../src/index.js';
import { describe, expect, test } from '../harness/store-fixture.js';

interface Victim {
  store: Store;
  key: string;
  ephemeralKey: string;
  /** The victim's Redis keys with their bytes and TTLs, now. */
  snapshot(): Promise<Record<string, { bytes: string; pttl: number }>>;
}

async function snapshotOf(redis: Redis, namespace: string): Promise<Record<string, { bytes: string; pttl: number }>> {
  const out: Record<string, { bytes: string; pttl: number }> = {};
  // Its objects' keys (`<ns>:{tag}:...`): the connector's generation marker (`<ns>:generation:{t}`,
  // src/redis/generation.ts) is the connector's own and has its TTL refreshed.
  for (const k of (await redis.keys(`${namespace}:{*`)).sort()) {
    out[k] = { bytes: (await redis.getBuffer(k))!.toString('hex'), pttl: await redis.pttl(k) };
  }
  return out;
}

/** Run `attack` against a victim store in `<namespace>:victim` holding two objects; check they are untouched. */
async function withVictim(
  ctx: { redisUrl: string; namespace: string; redis: Redis },
  attack: (victim: Victim) => Promise<void>,
): Promise<void> {
  const namespace = `${ctx.namespace}:victim`;
  const store = new Store(`victim-${ctx.namespace}`, new RedisConnector({ url: ctx.redisUrl, namespace }));
  try {
    const key = await store.put({ secret: 'victim data' });
    const ephemeralKey = toRef(await store.proxy({ secret: 'once' }, { evict: true })).key;
    const victim: Victim = { store, key, ephemeralKey, snapshot: () => snapshotOf(ctx.redis, namespace) };
    const before = await victim.snapshot();
    expect(Object.keys(before)).toHaveLength(2);
    await attack(victim);
    expect(await victim.snapshot()).toEqual(before);
    expect(await store.get(key)).toEqual({ secret: 'victim data' });
  } finally {
    for (const k of await ctx.redis.keys(`${namespace}:*`)) await ctx.redis.unlink(k);
    await store.close();
  }
}

/** The attacker's own Redis keys (the victim's start with `<namespace>:victim:`). */
function ownKeys(redis: Redis, namespace: string): Promise<string[]> {
  return redis.keys(`${namespace}:{*`);
}

/** A ref as an attacker would write it: the attacker's store and namespace unless overridden. */
function craftedRef(store: Store, key: string, overrides: Partial<ProxyRef> = {}): ProxyRef {
  return { __proxystore__: 1, kind: 'proxy', store: store.name, namespace: store.namespace, key, shape: 'object', ...overrides };
}

describe('one store cannot reach another namespace by the other\'s keys', () => {
  test('get of the victim\'s key finds nothing', async ({ store, redis, redisUrl, namespace }) => {
    const ctx = { store, redis, redisUrl, namespace };
    await withVictim(ctx, async (victim) => {
      expect(await ctx.store.get(victim.key)).toBeUndefined();
    });
  });

  test('exists of the victim\'s key is false', async ({ store, redis, redisUrl, namespace }) => {
    const ctx = { store, redis, redisUrl, namespace };
    await withVictim(ctx, async (victim) => {
      expect(await ctx.store.exists(victim.key)).toBe(false);
    });
  });

  test('evict of the victim\'s keys leaves the victim\'s objects alone', async ({ store, redis, redisUrl, namespace }) => {
    const ctx = { store, redis, redisUrl, namespace };
    await withVictim(ctx, async (victim) => {
      await ctx.store.evict(victim.key);
      await ctx.store.evict(victim.ephemeralKey);
    });
  });

  test('proxyFromKey of the victim\'s key resolves to a missing-key error', async ({ store, redis, redisUrl, namespace }) => {
    const ctx = { store, redis, redisUrl, namespace };
    await withVictim(ctx, async (victim) => {
      await expect(resolve(await ctx.store.proxyFromKey(victim.key))).rejects.toThrow(ProxyResolveMissingKeyError);
    });
  });
});

describe('crafted refs', () => {
  test('a ref naming the victim\'s namespace is refused by the store of that name here', async ({ store, redis, redisUrl, namespace }) => {
    const ctx = { store, redis, redisUrl, namespace };
    await withVictim(ctx, async (victim) => {
      const ref = craftedRef(ctx.store, victim.key, { namespace: victim.store.namespace });
      await expect(resolve(fromRef(ref))).rejects.toThrow(ProxyStoreFactoryError);
      await expect(resolve(fromRef(ref))).rejects.toThrow(/belongs to namespace ".*:victim".*uses namespace "[^"]+": refused/);
    });
  });

  test('an ephemeral ref naming the victim\'s namespace consumes nothing', async ({ store, redis, redisUrl, namespace }) => {
    const ctx = { store, redis, redisUrl, namespace };
    await withVictim(ctx, async (victim) => {
      const ref = craftedRef(ctx.store, victim.ephemeralKey, { namespace: victim.store.namespace, evict: true });
      await expect(resolve(fromRef(ref))).rejects.toThrow(ProxyStoreFactoryError);
    });
  });

  test('a ref naming this store but carrying the victim\'s key resolves in this namespace only: missing', async ({ store, redis, redisUrl, namespace }) => {
    const ctx = { store, redis, redisUrl, namespace };
    await withVictim(ctx, async (victim) => {
      await expect(resolve(fromRef(craftedRef(ctx.store, victim.key)))).rejects.toThrow(ProxyResolveMissingKeyError);
    });
  });

  test('an ephemeral ref naming this store but carrying the victim\'s key consumes nothing of the victim\'s', async ({ store, redis, redisUrl, namespace }) => {
    const ctx = { store, redis, redisUrl, namespace };
    await withVictim(ctx, async (victim) => {
      const ref = craftedRef(ctx.store, victim.ephemeralKey, { evict: true });
      await expect(resolve(fromRef(ref))).rejects.toThrow(ProxyResolveMissingKeyError);
      expect(await ownKeys(ctx.redis, ctx.namespace)).toEqual([]);
    });
  });

  test('a ref naming the victim\'s store, not registered here, is refused', async ({ store, redis, redisUrl, namespace }) => {
    const ctx = { store, redis, redisUrl, namespace };
    await withVictim(ctx, async (victim) => {
      const ref = craftedRef(ctx.store, victim.key, { store: victim.store.name, namespace: victim.store.namespace });
      await expect(resolve(fromRef(ref))).rejects.toThrow(/no store named ".*" is registered/);
    });
  });

  test('a proxy of the victim\'s namespace nested in a stored object reads back but is refused on resolve', async ({ store, redis, redisUrl, namespace }) => {
    const ctx = { store, redis, redisUrl, namespace };
    await withVictim(ctx, async (victim) => {
      const victimProxy = fromRef(toRef(await victim.store.proxyFromKey(victim.key)));
      const key = await ctx.store.put({ inner: victimProxy });
      const back = await ctx.store.get<{ inner: object }>(key);
      expect(isProxy(back!.inner)).toBe(true);
      await expect(resolve(back!.inner)).rejects.toThrow(ProxyStoreFactoryError);
      await ctx.store.evict(key);
    });
  });
});

describe('keys that try to escape the namespace', () => {
  /** Keys built from the victim's Redis key and the characters of the key layout. */
  function escapes(ctx: { namespace: string }, victim: Victim): string[] {
    const redisKey = victim.store.connector.dataKey(victim.key);
    const afterNs = redisKey.slice(ctx.namespace.length); // ':victim:{<tag>}:d:<key>'
    return [
      redisKey,
      afterNs,
      afterNs.slice(1),
      `}${afterNs}`,
      `x}${afterNs}`,
      `{${victim.key}}`,
      `${victim.key}}:d:${victim.key}`,
      `}:d:${victim.key}`,
      `victim:{${victim.key}}:d:${victim.key}`,
      `../victim/${victim.key}`,
      '*',
      'victim:*',
      `${victim.key}~${victim.key}`,
      `~${victim.key}`,
    ];
  }

  test('get, exists, proxyFromKey and resolve of escaping keys find nothing', async ({ store, redis, redisUrl, namespace }) => {
    const ctx = { store, redis, redisUrl, namespace };
    await withVictim(ctx, async (victim) => {
      for (const key of escapes(ctx, victim)) {
        expect(await ctx.store.get(key), key).toBeUndefined();
        expect(await ctx.store.exists(key), key).toBe(false);
        await expect(resolve(await ctx.store.proxyFromKey(key)), key).rejects.toThrow(ProxyResolveMissingKeyError);
      }
    });
  });

  test('evict and ephemeral consume of escaping keys touch nothing of the victim\'s', async ({ store, redis, redisUrl, namespace }) => {
    const ctx = { store, redis, redisUrl, namespace };
    await withVictim(ctx, async (victim) => {
      for (const key of [...escapes(ctx, victim), victim.ephemeralKey]) {
        await ctx.store.evict(key);
        await expect(resolve(fromRef(craftedRef(ctx.store, key, { evict: true }))), key).rejects.toThrow(ProxyResolveMissingKeyError);
      }
      expect(await ownKeys(ctx.redis, ctx.namespace)).toEqual([]);
    });
  });

  test('any key made of the victim\'s key and layout characters stays in this namespace', async ({ store, redis, redisUrl, namespace }) => {
    const ctx = { store, redis, redisUrl, namespace };
    await withVictim(ctx, async (victim) => {
      const piece = fc.constantFrom(victim.key, victim.ephemeralKey, 'victim', ctx.namespace, ':', '{', '}', '~', 'd', 'tomb', '%', '*', '%7B');
      await fc.assert(
        fc.asyncProperty(fc.array(piece, { minLength: 1, maxLength: 8 }).map((p) => p.join('')), async (key) => {
          expect(ctx.store.connector.dataKey(key).startsWith(`${ctx.namespace}:{`)).toBe(true);
          expect(await ctx.store.get(key)).toBeUndefined();
          await ctx.store.evict(key);
          await resolve(fromRef(craftedRef(ctx.store, key, { evict: true }))).catch((err: unknown) => {
            expect(err).toBeInstanceOf(ProxyResolveMissingKeyError);
          });
        }),
        { numRuns: 200 },
      );
    });
  });

  test('no key of one namespace is a key of another, even when one namespace is a prefix of the other', ({ store, redisUrl, namespace }) => {
    const other = new RedisConnector({ url: redisUrl, namespace: `${namespace}:victim`, redisOptions: { lazyConnect: true } });
    try {
      fc.assert(
        fc.property(fc.string({ unit: 'binary', minLength: 1 }), fc.string({ unit: 'binary', minLength: 1 }), (a, b) => {
          expect(store.connector.dataKey(a)).not.toBe(other.dataKey(b));
          expect(store.connector.keys.object('tomb', a)).not.toBe(other.keys.object('tomb', b));
        }),
        { numRuns: 2000 },
      );
    } finally {
      other.client.disconnect();
    }
  });
});

describe('stores built from the environment', () => {
  test('a ref of another namespace is refused before any store or connection is made', async ({ store, redis, redisUrl, namespace }) => {
    const ctx = { store, redis, redisUrl, namespace };
    const saved = { url: process.env[ENV_URL], namespace: process.env[ENV_NAMESPACE] };
    process.env[ENV_URL] = ctx.redisUrl;
    process.env[ENV_NAMESPACE] = ctx.namespace;
    try {
      await withVictim(ctx, async (victim) => {
        const name = `from-env-${ctx.namespace}`;
        const ref = craftedRef(ctx.store, victim.key, { store: name, namespace: victim.store.namespace });
        const err = await resolve(fromRef(ref)).catch((e: unknown) => e);
        expect(err).toBeInstanceOf(ProxyStoreError);
        expect((err as Error).message).toMatch(/belongs to namespace ".*:victim".*refused/);
        expect(getStore(name)).toBeUndefined();
      });
    } finally {
      for (const [name, value] of [[ENV_URL, saved.url], [ENV_NAMESPACE, saved.namespace]] as const) {
        if (value === undefined) delete process.env[name];
        else process.env[name] = value;
      }
    }
  });
});
