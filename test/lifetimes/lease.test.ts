/**
 * LeaseLifetime against a real Redis: the lease is a Redis TTL on every
 * member and on the lifetime's own keys, from the server's clock. The first
 * block ports ProxyStore's lease tests; where a wait is needed, the tests poll
 * with a deadline (no timing assertions).
 */
import {
  ClusterReconfiguringError,
  ContextLifetime,
  InvalidOptionsError,
  LeaseLifetime,
  LifetimeEndedError,
  Store,
} from '../../src/index.js';
import { lifetimeTuning } from '../../src/lifetimes/base.js';
import { describe, expect, test } from '../harness/store-fixture.js';
import { lifetimeKeys, namespaceKeys, objectCount, waitUntil } from './util.js';

describe('ported from ProxyStore (tests/store/lifetimes_test.py)', () => {
  // ProxyStore also takes a timedelta; a number of seconds is its TypeScript form.
  test.for([
    ['a Date in the past', new Date(0)],
    ['0 seconds', 0],
    ['-1 seconds', -1],
  ] as const)('a lease whose expiry is now or earlier (%s) is done, and close is idempotent', async ([, expiry], { store }) => {
    const lifetime = new LeaseLifetime(store, { expiry });
    expect(await lifetime.done()).toBe(true);
    await lifetime.close();
    await lifetime.close();
  });

  // ProxyStore extends a 1 ms lease before its timer fires; here the lease is a
  // Redis TTL that a 1 ms lease may already have passed, so the lease is 3 s
  // (room for a put and an extend on a loaded machine).
  const expiries: [string, () => Date | number][] = [
    ['a Date just past', () => new Date(Date.now() - 1)],
    ['0.001 seconds', () => 0.001],
  ];
  test.for(expiries)('a lease extended by %s still ends', async ([, expiry], { store }) => {
    const lifetime = new LeaseLifetime(store, { expiry: 3 });
    const key = await store.put('v', { lifetime });
    await lifetime.extend(expiry());
    await waitUntil(() => lifetime.done(), 'the lease has ended');
    expect(await store.exists(key)).toBe(false);
  });
});

describe('the lease is a Redis TTL', () => {
  test("members and the lifetime's own keys expire at the lease end, to the millisecond", async ({ store, redis }) => {
    await using lifetime = new LeaseLifetime(store, { expiry: 60 });
    const [k1, k2] = await store.putBatch(['a', 'b'], { lifetime });
    const foreign = await store.put('added later');
    await lifetime.addKey(foreign);
    const k = lifetimeKeys(store, lifetime.id);
    const at = await redis.pexpiretime(k.meta);
    expect(at).toBeGreaterThan(Date.now() + 50_000);
    for (const key of [k.members, k.foreign, ...[k1, k2, foreign].map((x) => store.connector.dataKey(x as string))]) {
      expect(await redis.pexpiretime(key)).toBe(at);
    }
  });

  test('the objects vanish at the lease end with no client doing anything', async ({ store, connect, namespace, redis }) => {
    const owner = new Store('owner', connect());
    const lifetime = new LeaseLifetime(owner, { expiry: 3 });
    const keys = await owner.putBatch([1, 2, 3], { lifetime });
    const id = lifetime.id;
    for (const key of keys) expect(await redis.pttl(owner.connector.dataKey(key))).not.toBe(-1); // a TTL, or gone already
    await owner.close(); // nobody is left to run a timer
    await waitUntil(async () => (await namespaceKeys(redis, namespace)).length === 0, 'every key of the lease is gone');
    for (const key of keys) expect(await store.exists(key)).toBe(false);
    expect(await (await ContextLifetime.attach(store, id)).done()).toBe(true);
  });

  test('done() is true once the lease has ended, in every handle', async ({ store, connect }) => {
    // Another connection sees the lifetime only once Redis has run its creation.
    const lifetime = await new LeaseLifetime(store, { expiry: 3 }).waitUntilReady();
    const other = new Store('other', connect());
    try {
      const attached = await LeaseLifetime.attach(other, lifetime.id);
      expect(await attached.done()).toBe(false);
      await waitUntil(() => attached.done(), 'the attached handle sees the lease end');
      expect(await lifetime.done()).toBe(true);
      await expect(other.put('late', { lifetime: attached })).rejects.toThrow(LifetimeEndedError);
      await expect(attached.extend(10)).rejects.toThrow(/has ended \(its lease ran out/);
    } finally {
      await other.close();
    }
  });
});

describe('extend', () => {
  test('extend(seconds) adds to the lease: PTTL of a member and of a key added later show the new expiry', async ({ store, redis }) => {
    await using lifetime = new LeaseLifetime(store, { expiry: 60 });
    const member = await store.put('member', { lifetime });
    const meta = lifetimeKeys(store, lifetime.id).meta;
    const before = await redis.pexpiretime(meta);

    await lifetime.extend(120);
    const after = await redis.pexpiretime(meta);
    expect(after).toBe(before + 120_000);
    const later = await store.put('added after extend', { lifetime });
    for (const key of [member, later]) {
      const data = store.connector.dataKey(key);
      const pttl = await redis.pttl(data);
      expect(pttl).toBeGreaterThan(170_000); // 180 s lease, minus test time
      expect(pttl).toBeLessThanOrEqual(180_000);
      expect(await redis.pexpiretime(data)).toBe(after);
    }
  });

  test('extend(date) sets the lease, even earlier', async ({ store, redis }) => {
    await using lifetime = new LeaseLifetime(store, { expiry: 600 });
    const member = await store.put('member', { lifetime });
    const target = new Date(Date.now() + 30_000);
    await lifetime.extend(target);
    const data = store.connector.dataKey(member);
    expect(await redis.pexpiretime(data)).toBe(target.getTime());
    expect(await redis.pexpiretime(lifetimeKeys(store, lifetime.id).meta)).toBe(target.getTime());
    const pttl = await redis.pttl(data);
    expect(pttl).toBeGreaterThan(0);
    expect(pttl).toBeLessThanOrEqual(30_000);
  });

  test('extend to a time already past ends the lifetime and evicts its objects now', async ({ store, redis, namespace }) => {
    const lifetime = new LeaseLifetime(store, { expiry: 600 });
    const keys = await store.putBatch(['a', 'b', 'c'], { lifetime });
    await lifetime.addKey(await store.put('foreign'));
    await lifetime.extend(new Date(Date.now() - 60_000));
    expect(await lifetime.done()).toBe(true);
    for (const key of keys) expect(await store.exists(key)).toBe(false);
    expect(await objectCount(redis, namespace)).toBe(0);
  });

  test('extend after the end throws LifetimeEndedError', async ({ store }) => {
    const lifetime = new LeaseLifetime(store, { expiry: 60 });
    await lifetime.close();
    await expect(lifetime.extend(5)).rejects.toThrow(LifetimeEndedError);
  });

  test('a foreign key added to a lease gets its expiry, and extend moves it', async ({ store, redis }) => {
    await using lifetime = new LeaseLifetime(store, { expiry: 60 });
    const foreign = await store.put('made without a lifetime');
    const data = store.connector.dataKey(foreign);
    expect(await redis.pttl(data)).toBe(-1);
    await lifetime.addKey(foreign);
    const meta = lifetimeKeys(store, lifetime.id).meta;
    expect(await redis.pexpiretime(data)).toBe(await redis.pexpiretime(meta));
    await lifetime.extend(60);
    expect(await redis.pexpiretime(data)).toBe(await redis.pexpiretime(meta));
  });

  test('extend reaches every member when it goes in chunks', async ({ store, redis }) => {
    const saved = { ...lifetimeTuning };
    Object.assign(lifetimeTuning, { chunk: 4, batch: 9 });
    try {
      await using lifetime = new LeaseLifetime(store, { expiry: 60 });
      const own = await store.putBatch(Array.from({ length: 57 }, (_, i) => i), { lifetime });
      const foreign = await store.putBatch(Array.from({ length: 13 }, (_, i) => i));
      await lifetime.addKey(...foreign);
      await lifetime.extend(30);
      const at = await redis.pexpiretime(lifetimeKeys(store, lifetime.id).meta);
      for (const key of [...own, ...foreign]) expect(await redis.pexpiretime(store.connector.dataKey(key))).toBe(at);
    } finally {
      Object.assign(lifetimeTuning, saved);
    }
  });

  test('two extends by seconds from two handles add up', async ({ store, redis }) => {
    await using lifetime = await new LeaseLifetime(store, { expiry: 60 }).waitUntilReady();
    const meta = lifetimeKeys(store, lifetime.id).meta;
    const before = await redis.pexpiretime(meta);
    const other = await LeaseLifetime.attach(store, lifetime.id);
    await Promise.all([lifetime.extend(10), other.extend(5)]);
    expect(await redis.pexpiretime(meta)).toBe(before + 15_000);
  });
});

describe('an extend that failed part-way, called again', () => {
  /** Make the first call of `name` fail once, after (`ran`) or instead of running it. */
  function failOnce(store: Store, name: string, ran: boolean, mayHaveRun: boolean): void {
    const scripts = store.connector.scripts;
    const run = scripts.run.bind(scripts);
    let failed = false;
    scripts.run = (async (...args: Parameters<typeof run>) => {
      if (args[0] !== name || failed) return run(...args);
      failed = true;
      if (ran) await run(...args);
      throw new ClusterReconfiguringError(`Redis ${name} failed: the Redis Cluster is reconfiguring (injected)`, { mayHaveRun });
    }) as typeof run;
  }

  test('after its reply was lost (the lease end may have moved), extend(60) again is applied once', async ({ store, redis }) => {
    await using lifetime = await new LeaseLifetime(store, { expiry: 60 }).waitUntilReady();
    const key = await store.put('v', { lifetime });
    const meta = lifetimeKeys(store, lifetime.id).meta;
    const before = await redis.pexpiretime(meta);
    failOnce(store, 'lifetimeExtend', true, true);
    const err = (await lifetime.extend(60).catch((e: unknown) => e)) as Error;
    expect(err).toBeInstanceOf(ClusterReconfiguringError);
    expect(err.message).toMatch(/may have been applied: calling extend\(60\) again on this handle applies it at most once/);
    await lifetime.extend(60);
    expect(await redis.pexpiretime(meta)).toBe(before + 60_000);
    expect(await redis.pexpiretime(store.connector.dataKey(key))).toBe(before + 60_000);
    // A new extend after that one is a new call.
    await lifetime.extend(60);
    expect(await redis.pexpiretime(meta)).toBe(before + 120_000);
  });

  test('after the lease end moved but a later chunk failed, extend(60) again finishes the walk and is applied once', async ({ store, redis }) => {
    const saved = { ...lifetimeTuning };
    Object.assign(lifetimeTuning, { chunk: 4 });
    try {
      await using lifetime = await new LeaseLifetime(store, { expiry: 60 }).waitUntilReady();
      const own = await store.putBatch(Array.from({ length: 30 }, (_, i) => i), { lifetime });
      const meta = lifetimeKeys(store, lifetime.id).meta;
      const before = await redis.pexpiretime(meta);
      failOnce(store, 'lifetimeExpireChunk', false, false);
      const err = (await lifetime.extend(60).catch((e: unknown) => e)) as Error;
      expect(err).toBeInstanceOf(ClusterReconfiguringError);
      expect(err.message).toMatch(/The lease end already moved .*call extend\(60\) again on this handle to finish; it is not applied twice/);
      expect(await redis.pexpiretime(meta)).toBe(before + 60_000);
      await lifetime.extend(60);
      expect(await redis.pexpiretime(meta)).toBe(before + 60_000);
      for (const key of own) expect(await redis.pexpiretime(store.connector.dataKey(key))).toBe(before + 60_000);
    } finally {
      Object.assign(lifetimeTuning, saved);
    }
  });

  test('after a failure that surely changed nothing, extend(60) again is a new extend', async ({ store, redis }) => {
    await using lifetime = await new LeaseLifetime(store, { expiry: 60 }).waitUntilReady();
    const meta = lifetimeKeys(store, lifetime.id).meta;
    const before = await redis.pexpiretime(meta);
    failOnce(store, 'lifetimeExtend', false, false);
    const err = (await lifetime.extend(60).catch((e: unknown) => e)) as Error;
    expect(err).toBeInstanceOf(ClusterReconfiguringError);
    expect(err.message).not.toMatch(/again on this handle/);
    expect(await redis.pexpiretime(meta)).toBe(before);
    await lifetime.extend(60);
    expect(await redis.pexpiretime(meta)).toBe(before + 60_000);
  });
});

describe('options', () => {
  test('an expiry that is neither seconds nor a Date is InvalidOptionsError', ({ store }) => {
    expect(() => new LeaseLifetime(store, { expiry: Number.NaN })).toThrow(InvalidOptionsError);
    expect(() => new LeaseLifetime(store, { expiry: new Date('nope') })).toThrow(/invalid Date/);
    expect(() => new LeaseLifetime(store, { expiry: '10' as unknown as number })).toThrow(/seconds or a Date/);
    expect(() => new LeaseLifetime(store, {} as { expiry: number })).toThrow(/needs \{ expiry \}/);
  });

  test('LeaseLifetime.attach refuses a lifetime without a lease', async ({ store }) => {
    await using context = await new ContextLifetime(store).waitUntilReady();
    await expect(LeaseLifetime.attach(store, context.id)).rejects.toThrow(/not a lease/);
  });
});

describe('expiries Redis cannot hold', () => {
  /** A construction error, thrown at once or by the first await of its creation. */
  async function creationError(make: () => LeaseLifetime): Promise<unknown> {
    try {
      await make().waitUntilReady();
    } catch (err) {
      return err;
    }
    return undefined;
  }

  test.for([1e15, 1e20, -1e15, new Date(8.64e15)] as const)(
    'new LeaseLifetime(store, { expiry: %s }) is refused with InvalidOptionsError and writes nothing',
    async (expiry, { store, redis, namespace }) => {
      const err = await creationError(() => new LeaseLifetime(store, { expiry }));
      expect(err).toBeInstanceOf(InvalidOptionsError);
      expect((err as Error).message).not.toMatch(/user_script|ERR /);
      expect(await namespaceKeys(redis, namespace)).toEqual([]);
    },
  );

  test.for([1e15, new Date(8.64e15)] as const)('extend(%s) is refused with InvalidOptionsError and changes nothing', async (expiry, { store, redis }) => {
    const lifetime = new LeaseLifetime(store, { expiry: 30 });
    const key = await store.put('kept', { lifetime });
    const k = lifetimeKeys(store, lifetime.id);
    const before = await redis.pexpiretime(k.meta);
    await expect(lifetime.extend(expiry)).rejects.toThrow(InvalidOptionsError);
    expect(await redis.pexpiretime(k.meta)).toBe(before);
    expect(await redis.pexpiretime(store.connector.dataKey(key))).toBe(before);
    expect(await redis.hget(k.meta, 'state')).toBe('open');
    await lifetime.close();
  });
});
