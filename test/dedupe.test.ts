/**
 * `dedupe: true` (single and cluster projects): the key is a hash of the
 * stored bytes, a put of equal bytes adds a reference and writes nothing,
 * `evict` takes one reference and the last deletes the object, a lifetime
 * holds one reference released at its end, and dedupe refuses what would
 * consume or own a shared object.
 */
import { createHash } from 'node:crypto';
import {
  ContextLifetime,
  InvalidOptionsError,
  LeaseLifetime,
  RedisConnector,
  Store,
  StaticLifetime,
  fromRef,
  intoOwned,
  resolve,
  toRef,
} from '../src/index.js';
import { kResetStatic } from '../src/lifetimes/static.js';
import { serialize } from '../src/serialize.js';
import { afterEach, connectionOptions, describe, expect, namespaceKeys, test } from './harness/store-fixture.js';

/** The references of a deduped object, as Redis holds them: reference -> end (ms; 9999999999999: none). */
async function refsOf(store: Store, redis: Parameters<typeof namespaceKeys>[0], key: string): Promise<Record<string, number>> {
  const flat = await redis.zrange(store.connector.keys.object('refs', key), 0, -1, 'WITHSCORES');
  const out: Record<string, number> = {};
  for (let i = 0; i < flat.length; i += 2) out[flat[i] as string] = Number(flat[i + 1]);
  return out;
}

const NO_END = 9_999_999_999_999;

describe('dedupe: true with the StaticLifetime', () => {
  afterEach(async () => {
    await StaticLifetime.instance().close();
    StaticLifetime[kResetStatic]();
  });

  test('its part holds a reference, moved by its heartbeat and released when the store closes', async ({ target, namespace, redis }) => {
    const store = new Store(`dedupe-static-${namespace}`, new RedisConnector({ ...connectionOptions(target), namespace }), { leaseTtl: 0.3 });
    const lifetime = StaticLifetime.instance();
    const key = await store.put({ cfg: 1 }, { dedupe: true, lifetime });
    const held = await store.put({ cfg: 1 }, { dedupe: true });
    expect(held).toBe(key);
    const part = lifetime.idIn(store) as string;
    const first = (await refsOf(store, redis, key))[`l:${part}`] as number;
    expect(first).toBeLessThan(NO_END);
    // A heartbeat later (every leaseTtl / 3), the part's reference ends later.
    await new Promise((r) => setTimeout(r, 500));
    expect((await refsOf(store, redis, key))[`l:${part}`]).toBeGreaterThan(first);
    await store.close();
    // The part's reference is released; the put's is left.
    expect(Object.keys(await refsOf(store, redis, key))).toEqual([expect.stringMatching(/^p:/)]);
    const again = new Store(`dedupe-static2-${namespace}`, new RedisConnector({ ...connectionOptions(target), namespace }));
    try {
      await again.evict(key);
      expect(await again.exists(key)).toBe(false);
    } finally {
      await again.close();
    }
  });
});

describe('dedupe: true', () => {
  test('the key is the SHA-256 of the stored bytes, the same in every store of the namespace', async ({ store, connect }) => {
    const value = { job: 'resize', size: [640, 480] };
    const key = await store.put(value, { dedupe: true });
    const bytes = serialize(value);
    expect(key).toBe(`sha256.${createHash('sha256').update(bytes).digest('base64url')}`);
    const other = new Store('other', connect());
    try {
      expect(await other.put(value, { dedupe: true })).toBe(key);
      expect(await other.get(key)).toEqual(value);
    } finally {
      await other.close();
    }
    await store.evict(key);
    await store.evict(key);
    expect(await store.exists(key)).toBe(false);
  });

  test('a second put of equal bytes writes nothing and adds one reference; evict takes one; the last deletes the object', async ({ store, redis }) => {
    const a = await store.put('shared text', { dedupe: true });
    const data = store.connector.dataKey(a);
    // Written once: remember the object's identity through its idle time... and its bytes.
    const before = await redis.getBuffer(data);
    const b = await store.put('shared text', { dedupe: true });
    const c = await store.proxy('shared text', { dedupe: true });
    expect(b).toBe(a);
    expect(toRef(c).key).toBe(a);
    expect(toRef(c).evict).toBeFalsy();
    expect(Object.keys(await refsOf(store, redis, a))).toHaveLength(3);
    expect(Object.values(await refsOf(store, redis, a)).every((e) => e === NO_END)).toBe(true);
    expect(await redis.getBuffer(data)).toEqual(before);
    expect(await redis.pttl(data)).toBe(-1);

    await store.evict(a);
    expect(Object.keys(await refsOf(store, redis, a))).toHaveLength(2);
    await store.evict(a);
    expect(await store.get(a)).toBe('shared text');
    expect(await resolve(fromRef(toRef(c)))).toBe('shared text');
    await store.evict(a);
    expect(await store.exists(a)).toBe(false);
    expect(await redis.exists(store.connector.keys.object('refs', a))).toBe(0);
    // Evicting a missing deduped key is fine, as any missing key.
    await store.evict(a);
    // A put after the last evict writes the object anew.
    expect(await store.put('shared text', { dedupe: true })).toBe(a);
    expect(await store.get(a)).toBe('shared text');
    await store.evict(a);
  });

  test('a large value is offered by its hash first: equal bytes are not sent again', async ({ store, redis }) => {
    const big = Buffer.alloc(256 * 1024, 3);
    const key = await store.put(big, { dedupe: true });
    const sent: number[] = [];
    // Watch what leaves the client: the second put must carry no value.
    const client = store.connector.client as unknown as { sendCommand: (cmd: { args: unknown[] }) => unknown };
    const original = client.sendCommand.bind(client);
    client.sendCommand = (cmd) => {
      sent.push(cmd.args.reduce<number>((n, a) => n + (Buffer.isBuffer(a) ? a.length : String(a).length), 0));
      return original(cmd);
    };
    try {
      expect(await store.put(big, { dedupe: true })).toBe(key);
    } finally {
      client.sendCommand = original;
    }
    expect(Math.max(...sent)).toBeLessThan(1024);
    expect(Object.keys(await refsOf(store, redis, key))).toHaveLength(2);
    expect(((await store.get(key)) as Buffer).equals(big)).toBe(true);
    await store.evict(key);
    await store.evict(key);
    expect(await store.exists(key)).toBe(false);
  });

  test('ttl: each reference ends by itself; the object lives until the latest end (the longest wins)', async ({ store, redis }) => {
    const key = await store.put([1, 2, 3], { dedupe: true, ttl: 60 });
    const data = store.connector.dataKey(key);
    const first = await redis.pexpiretime(data);
    expect(first).toBeGreaterThan(Date.now() + 50_000);
    await store.put([1, 2, 3], { dedupe: true, ttl: 600 });
    const longer = await redis.pexpiretime(data);
    expect(longer).toBeGreaterThan(first + 500_000);
    await store.put([1, 2, 3], { dedupe: true, ttl: 5 });
    expect(await redis.pexpiretime(data)).toBe(longer);
    expect(await redis.pexpiretime(store.connector.keys.object('refs', key))).toBe(longer);
    // A reference without a ttl: no expiry while it lasts.
    await store.put([1, 2, 3], { dedupe: true });
    expect(await redis.pttl(data)).toBe(-1);
    // evict takes the reference that would keep it longest: the one without an end.
    await store.evict(key);
    expect(await redis.pexpiretime(data)).toBe(longer);
    await store.evict(key);
    await store.evict(key);
    await store.evict(key);
    expect(await store.exists(key)).toBe(false);
  });

  test('a reference whose ttl passed is gone: the object goes with the last end', async ({ store }) => {
    const key = await store.put('brief', { dedupe: true, ttl: 0.2 });
    await store.put('brief', { dedupe: true, ttl: 0.3 });
    await new Promise((r) => setTimeout(r, 450));
    expect(await store.exists(key)).toBe(false);
    // And a new put starts afresh.
    expect(await store.put('brief', { dedupe: true, ttl: 60 })).toBe(key);
    await store.evict(key);
    expect(await store.exists(key)).toBe(false);
  });

  test('putBatch and proxyBatch: one reference per value, equal values of one batch included', async ({ store, redis }) => {
    const keys = await store.putBatch(['x', 'y', 'x', Buffer.alloc(100_000, 1)], { dedupe: true });
    expect(keys[0]).toBe(keys[2]);
    expect(keys[1]).not.toBe(keys[0]);
    expect(Object.keys(await refsOf(store, redis, keys[0] as string))).toHaveLength(2);
    const proxies = await store.proxyBatch(['x', 'y'], { dedupe: true });
    expect(proxies.map((p) => toRef(p).key)).toEqual([keys[0], keys[1]]);
    expect(Object.keys(await refsOf(store, redis, keys[0] as string))).toHaveLength(3);
    for (const key of [...keys, keys[0], keys[1], keys[0]]) await store.evict(key as string);
    for (const key of keys) expect(await store.exists(key as string)).toBe(false);
  });

  test('a lifetime holds one reference and releases it at its end; the object stays while others hold it', async ({ store, redis }) => {
    const lifetime = new ContextLifetime(store);
    const key = await store.put({ model: 'weights' }, { dedupe: true, lifetime });
    // Twice under the same lifetime: still one reference of the lifetime.
    expect(await store.put({ model: 'weights' }, { dedupe: true, lifetime })).toBe(key);
    expect(await refsOf(store, redis, key)).toEqual({ [`l:${lifetime.id}`]: NO_END });
    const held = await store.put({ model: 'weights' }, { dedupe: true });
    expect(held).toBe(key);
    await lifetime.close();
    // The close released the lifetime's reference, and deleted nothing that another holds.
    expect(Object.keys(await refsOf(store, redis, key))).toEqual([expect.stringMatching(/^p:/)]);
    expect(await store.get(key)).toEqual({ model: 'weights' });
    await store.evict(key);
    expect(await store.exists(key)).toBe(false);

    // The lifetime's reference as the last: its close deletes the object.
    const second = new ContextLifetime(store);
    await store.put({ model: 'weights' }, { dedupe: true, lifetime: second });
    await second.close();
    expect(await store.exists(key)).toBe(false);
  });

  test('a lease lifetime: its reference ends at the lease end and moves with extend', async ({ store, redis }) => {
    const lifetime = new LeaseLifetime(store, { expiry: 60 });
    const key = await store.put('leased', { dedupe: true, lifetime });
    const data = store.connector.dataKey(key);
    const end = await redis.pexpiretime(data);
    expect(end).toBeGreaterThan(Date.now() + 50_000);
    await lifetime.extend(600);
    const moved = await redis.pexpiretime(data);
    expect(moved).toBeGreaterThan(end + 500_000);
    expect((await refsOf(store, redis, key))[`l:${lifetime.id}`]).toBe(moved);
    await lifetime.close();
    expect(await store.exists(key)).toBe(false);
  });

  test('addKey and proxyFromKey with a lifetime take a reference; evict does not take a lifetime\'s', async ({ store, redis }) => {
    const key = await store.put('joined', { dedupe: true });
    const lifetime = new ContextLifetime(store);
    await lifetime.addKey(key);
    await store.proxyFromKey(key, { lifetime });
    const refs = Object.keys(await refsOf(store, redis, key));
    expect(refs).toHaveLength(2);
    expect(refs).toContain(`l:${lifetime.id}`);
    await store.evict(key);
    // Only the lifetime holds it: evict has no put's reference left to take.
    await store.evict(key);
    expect(await store.get(key)).toBe('joined');
    await lifetime.close();
    expect(await store.exists(key)).toBe(false);
  });

  test('a lease that runs out without a close: its reference ends with it, and the object with its last reference', async ({ store, redis }) => {
    const lifetime = new LeaseLifetime(store, { expiry: 0.4 });
    const key = await store.put('lapsing', { dedupe: true, lifetime });
    const other = await store.put('outliving', { dedupe: true, lifetime });
    await store.put('outliving', { dedupe: true, ttl: 60 });
    await new Promise((r) => setTimeout(r, 600));
    expect(await store.exists(key)).toBe(false);
    // The other one keeps its put's reference; the lease's has ended (and is forgotten at the next touch).
    expect(await store.get(other)).toBe('outliving');
    expect(await redis.pexpiretime(store.connector.dataKey(other))).toBeGreaterThan(Date.now() + 50_000);
    await store.evict(other);
    expect(await store.exists(other)).toBe(false);
  });

  test('the store\'s defaultTtl gives a put\'s reference its end', async ({ target, namespace, redis }) => {
    const store = new Store(`dedupe-default-${namespace}`, new RedisConnector({ ...connectionOptions(target), namespace }), { defaultTtl: 60 });
    try {
      const key = await store.put('defaulted', { dedupe: true });
      expect(Object.values(await refsOf(store, redis, key))[0]).toBeLessThan(NO_END);
      expect(await redis.pttl(store.connector.dataKey(key))).toBeGreaterThan(50_000);
      await store.evict(key);
      expect(await store.exists(key)).toBe(false);
    } finally {
      await store.close();
    }
  });

  test('dedupe refuses evict, reads and ownership with InvalidOptionsError, and stores nothing', async ({ store, redis }) => {
    await expect(store.put('x', { dedupe: true, reads: 2 })).rejects.toThrow(InvalidOptionsError);
    await expect(store.proxy('x', { dedupe: true, evict: true })).rejects.toThrow(/cannot be consumed: evict: true does not combine with dedupe/);
    await expect(store.proxy('x', { dedupe: true, reads: 3 })).rejects.toThrow(/reads does not combine with dedupe/);
    await expect(store.putBatch(['x'], { dedupe: true, reads: 3 })).rejects.toThrow(InvalidOptionsError);
    await expect(store.put('x', { dedupe: 'yes' as unknown as boolean })).rejects.toThrow(/dedupe must be a boolean/);
    await expect(store.ownedProxy('x', { dedupe: true } as never)).rejects.toThrow(/ownedProxy takes no `dedupe`/);
    expect(await namespaceKeys(redis, store.namespace)).toEqual([]);
    const lifetime = new ContextLifetime(store);
    await expect(store.put('x', { dedupe: true, lifetime, ttl: 5 })).rejects.toThrow(/dedupe with a lifetime takes no ttl/);
    expect(await redis.exists(store.connector.keys.lifetime('dedupe', lifetime.id))).toBe(0);
    await lifetime.close();

    const key = await store.put('x', { dedupe: true });
    await expect(store.proxyFromKey(key, { evict: true })).rejects.toThrow(/deduped object .* cannot be consumed/);
    const p = await store.proxyFromKey<string>(key);
    await expect(intoOwned(p)).rejects.toThrow(/deduped object .* cannot be owned/);
    // A consuming ref made by hand is refused at resolve, and consumes nothing.
    await expect(resolve(fromRef({ ...toRef(p), evict: true }))).rejects.toThrow(InvalidOptionsError);
    expect(await store.get(key)).toBe('x');
    // dedupe: false is a plain put.
    const plain = await store.put('x', { dedupe: false });
    expect(plain).not.toBe(key);
    await store.evict(plain);
    await store.evict(key);
  });
});
