/**
 * Round trips of lifetime operations, watched with MONITOR: creating a
 * lifetime, putting under it, adding a key (with its owner check) and closing
 * a small one are one script call each; proxyFromKey sends its header read
 * and the membership change together. Rules that compose stay one call on
 * the hot path: a put with a lifetime, a ttl and reads; a consume of a reads
 * object; a put with only a ttl is one SET.
 */
import type { Redis } from 'ioredis';
import { AlreadyOwnedError, ContextLifetime, LeaseLifetime, StaticLifetime, fromRef, getKey, resolve, toRef } from '../../src/index.js';
import { LUA_SCRIPTS } from '../../src/generated/lua.js';
import { watch, type Seen } from '../harness/monitor.js';
import { describe, expect, onTestFinished, test } from '../harness/store-fixture.js';

const shas = new Map<string, string>(Object.entries(LUA_SCRIPTS).map(([name, s]) => [s.sha, name]));
/** `evalsha:<script>` (or `eval:<script>`), or the plain command. */
function named(seen: Seen[]): string[] {
  return seen.map((s) => {
    if (s.command === 'evalsha') return `evalsha:${shas.get(s.args[0] as string) ?? '?'}`;
    if (s.command === 'eval') return `eval:${[...Object.entries(LUA_SCRIPTS)].find(([, v]) => v.source === s.args[0])?.[0] ?? '?'}`;
    return s.command;
  });
}

describe('lifetime operations on the wire', () => {
  test('create, put, putBatch, addKey, extend and close are one script call each', async ({ store, redis }) => {
    // Load every script on the connection first, so that what follows is EVALSHA.
    const warm = new LeaseLifetime(store, { expiry: 60 });
    await store.put('warm', { lifetime: warm });
    await warm.addKey(await store.put('k'));
    await warm.extend(1);
    await warm.close();

    const wire = await watch(redis, store.connector.client as Redis);
    onTestFinished(() => wire.stop());
    let lifetime!: LeaseLifetime;
    expect(named(await wire.during(async () => {
      lifetime = new LeaseLifetime(store, { expiry: 60 });
      await lifetime.done();
    }))).toEqual(['evalsha:lifetimeCreate', 'hget']);
    expect(named(await wire.during(() => store.put({ a: 1 }, { lifetime })))).toEqual(['evalsha:lifetimePut']);
    expect(named(await wire.during(() => store.putBatch([1, 2, 3], { lifetime })))).toEqual(['evalsha:lifetimePut']);
    const key = await store.put('outside');
    // lifetimeAddKeys reads each object's ownership record itself (an owned one is bound there).
    expect(named(await wire.during(() => lifetime.addKey(key)))).toEqual(['evalsha:lifetimeAddKeys']);
    expect(named(await wire.during(() => store.proxyFromKey(key, { lifetime })))).toEqual(['getrange', 'evalsha:lifetimeAddKeys']);
    // The scripts say whether it holds deduped objects (dedupe: true); none here, so nothing more.
    expect(named(await wire.during(() => lifetime.extend(30)))).toEqual(['evalsha:lifetimeExtend']);
    expect(named(await wire.during(() => lifetime.close()))).toEqual(['evalsha:lifetimeClose']);
  });

  test('a lifetime holding deduped objects moves and releases their references after its extend and close', async ({ store, redis }) => {
    // Warm: every script is loaded on this connection before watching (as in the test above).
    const warm = new LeaseLifetime(store, { expiry: 60 });
    await store.put({ warm: 1 }, { lifetime: warm, dedupe: true });
    await warm.extend(1);
    await warm.close();
    const lifetime = new LeaseLifetime(store, { expiry: 60 });
    await store.put({ shared: 1 }, { lifetime, dedupe: true });
    const wire = await watch(redis, store.connector.client as Redis);
    onTestFinished(() => wire.stop());
    const extend = named(await wire.during(() => lifetime.extend(30)));
    expect(extend.slice(0, 2)).toEqual(['evalsha:lifetimeExtend', 'sscan']);
    const close = named(await wire.during(() => lifetime.close()));
    expect(close.slice(0, 2)).toEqual(['evalsha:lifetimeClose', 'srandmember']);
  });

  test('ownedProxy with a lifetime, and addKey of an owned key, are one script call each', async ({ store, redis }) => {
    const lifetime = await new ContextLifetime(store).waitUntilReady();
    const other = await new ContextLifetime(store).waitUntilReady();
    await lifetime.addKey(await store.put('warm'));
    await store.ownedProxy('warm', { lifetime });
    const owned = await store.ownedProxy({ n: 1 });
    const plain = await store.put('plain');
    const wire = await watch(redis, store.connector.client as Redis);
    onTestFinished(() => wire.stop());
    expect(named(await wire.during(() => store.ownedProxy({ n: 2 }, { lifetime })))).toEqual(['evalsha:lifetimeOwnedCreate']);
    expect(named(await wire.during(() => lifetime.addKey(plain, getKey(owned))))).toEqual(['evalsha:lifetimeAddKeys']);
    // Bound to one lifetime: another refuses it in that one call, which adds nothing (not the plain key before it).
    let refusal: unknown;
    expect(named(await wire.during(async () => {
      refusal = await other.addKey(plain, getKey(owned)).catch((e: unknown) => e);
    }))).toEqual(['evalsha:lifetimeAddKeys']);
    expect(refusal).toBeInstanceOf(AlreadyOwnedError);
    expect(await redis.exists(store.connector.keys.lifetime('foreign', other.id))).toBe(0);
    await other.close();
    expect(await store.exists(plain)).toBe(true);
    await lifetime.close();
    expect(await store.exists(plain)).toBe(false);
    expect(await store.exists(getKey(owned))).toBe(false);
  });

  test('a static put is one script call once the store has its part', async ({ store, redis }) => {
    await store.put('first', { lifetime: StaticLifetime.instance() });
    const wire = await watch(redis, store.connector.client as Redis);
    onTestFinished(() => wire.stop());
    expect(named(await wire.during(() => store.put('second', { lifetime: StaticLifetime.instance() })))).toEqual([
      'evalsha:lifetimePut',
    ]);
    await StaticLifetime.instance().close();
  });

  test('a ContextLifetime sends its creation at construction, before the first put asks for it', async ({ store, redis }) => {
    const warm = new ContextLifetime(store);
    await store.put('w', { lifetime: warm });
    await warm.close();
    const wire = await watch(redis, store.connector.client as Redis);
    onTestFinished(() => wire.stop());
    let lifetime!: ContextLifetime;
    expect(named(await wire.during(async () => {
      lifetime = new ContextLifetime(store);
      await store.put('x', { lifetime });
    }))).toEqual(['evalsha:lifetimeCreate', 'evalsha:lifetimePut']);
    await lifetime.close();
  });

  test('a put with a lifetime, a ttl and reads is one script call; a consume of a reads object is one; a put with a ttl is one SET', async ({
    store,
    redis,
  }) => {
    const lifetime = new LeaseLifetime(store, { expiry: 60 });
    // Load the scripts on the connection first, so that what follows is EVALSHA.
    const warm = await store.proxy('warm', { lifetime, reads: 2, ttl: 30 });
    await resolve(fromRef(toRef(warm)));
    await store.evict(await store.put('warm', { reads: 2 }));

    const wire = await watch(redis, store.connector.client as Redis);
    onTestFinished(() => wire.stop());
    let key = '';
    expect(named(await wire.during(async () => {
      key = await store.put({ a: 1 }, { lifetime, ttl: 30, reads: 3 });
    }))).toEqual(['evalsha:lifetimePut']);
    expect(named(await wire.during(() => store.proxy({ b: 2 }, { lifetime, ttl: 30, reads: 3 })))).toEqual(['evalsha:lifetimePut']);
    expect(named(await wire.during(() => store.putBatch([1, 2, 3], { lifetime, ttl: 30, reads: 3 })))).toEqual(['evalsha:lifetimePut']);
    const p = await store.proxyFromKey(key, { evict: true });
    expect(named(await wire.during(() => resolve(fromRef(toRef(p)))))).toEqual(['evalsha:consume']);
    let budget = '';
    expect(named(await wire.during(async () => {
      budget = await store.put('budget', { reads: 3 });
    }))).toEqual(['evalsha:objectPut']);
    await store.evict(budget);
    const sets = await wire.during(() => store.put('short', { ttl: 30 }));
    expect(named(sets)).toEqual(['set']);
    expect(sets[0]!.args.slice(-2)).toEqual(['PX', '30000']);
    await lifetime.close();
  });
});
