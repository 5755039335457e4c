/**
 * Watches the wire with MONITOR: each public operation is one command from
 * the store's connection (one round trip), and scripts go as EVALSHA after
 * their first use. (SCRIPT FLUSH in the middle of a run: test/faults.test.ts.)
 */
import type { Redis } from 'ioredis';
import {
  borrow,
  clone,
  drop,
  fromRef,
  getKey,
  intoOwned,
  mutBorrow,
  release,
  resolve,
  toRef,
  update,
  type OwnedProxy,
  type RefMutProxy,
  type RefProxy,
} from '../src/index.js';
import { renewalOf } from '../src/ownership/renewal.js';
import { watch, type Seen } from './harness/monitor.js';
import { describe, expect, test } from './harness/store-fixture.js';

describe('round trips on the wire', () => {
  test('put, get, resolve and an ephemeral consume are one command each; scripts go as EVALSHA', async ({
    store,
    redis,
  }) => {
    const client = store.connector.client as Redis;
    const wire = await watch(redis, client);

    let key = '';
    const put = await wire.during(async () => {
      key = await store.put({ a: 1 });
    });
    expect(put.map((s) => s.command)).toEqual(['set']);

    const get = await wire.during(() => store.get(key));
    expect(get.map((s) => s.command)).toEqual(['get']);

    const p = fromRef(toRef(await store.proxyFromKey(key)));
    const resolved = await wire.during(() => resolve(p));
    expect(resolved.map((s) => s.command)).toEqual(['get']);

    const e1 = await store.proxy([1], { evict: true });
    const e2 = await store.proxy([2], { evict: true });
    const e3 = await store.proxy([3], { evict: true });
    const first = await wire.during(() => resolve(fromRef(toRef(e1))));
    expect(first).toHaveLength(1);
    expect(['eval', 'evalsha']).toContain(first[0]!.command);
    const second = await wire.during(() => resolve(fromRef(toRef(e2))));
    expect(second.map((s) => s.command)).toEqual(['evalsha']);

    // SCRIPT FLUSH is tested in test/faults.test.ts, on a server of its own: flushing this
    // shared Redis would make other files' MONITOR tests see an EVAL they do not expect.
    const third = await wire.during(() => resolve(fromRef(toRef(e3))));
    expect(third.map((s) => s.command)).toEqual(['evalsha']);

    await wire.stop();
    await store.evict(key);
    for (const e of [e1, e2, e3]) expect(await store.exists(getKey(e))).toBe(false);
  });

  test('putBatch of 2,500 values sends three MSETs of at most 1,000 keys and nothing else', async ({ store, redis }) => {
    const client = store.connector.client as Redis;
    const wire = await watch(redis, client);
    let keys: string[] = [];
    const seen = await wire.during(async () => {
      keys = await store.putBatch(Array.from({ length: 2500 }, (_, i) => ({ i })));
    });
    expect(seen.map((s) => s.command)).toEqual(['mset', 'mset', 'mset']);
    expect(seen.map((s) => s.args.length / 2)).toEqual([1000, 1000, 500]);
    await wire.stop();
    for (const k of keys) await store.evict(k);
  });
});

describe('ownership on the wire', () => {
  test('ownedProxy, borrow, mutBorrow, release, update, clone, drop and intoOwned are one script call each', async ({
    store,
    redis,
  }) => {
    const client = store.connector.client as Redis;
    const wire = await watch(redis, client);
    const scriptCalls = (seen: Seen[]) => seen.map((s) => (s.command === 'eval' || s.command === 'evalsha' ? 'script' : s.command));

    let owned!: OwnedProxy<number[]>;
    expect(scriptCalls(await wire.during(async () => (owned = await store.ownedProxy([1, 2, 3]))))).toEqual(['script']);
    let shared!: RefProxy<number[]>;
    expect(scriptCalls(await wire.during(async () => (shared = await borrow(owned))))).toEqual(['script']);
    expect(scriptCalls(await wire.during(() => release(shared)))).toEqual(['script']);
    let writer!: RefMutProxy<number[]>;
    expect(scriptCalls(await wire.during(async () => (writer = await mutBorrow(owned))))).toEqual(['script']);
    writer.push(4);
    expect(scriptCalls(await wire.during(() => update(writer)))).toEqual(['script']);
    expect(scriptCalls(await wire.during(() => release(writer)))).toEqual(['script']);
    // clone copies on the server: one script, and no bytes come through the client.
    let copy!: OwnedProxy<number[]>;
    const cloned = await wire.during(async () => (copy = await clone(owned)));
    expect(scriptCalls(cloned)).toEqual(['script']);
    expect(cloned[0]!.args.some((a) => a.includes('\\x'))).toBe(false);
    expect(scriptCalls(await wire.during(() => drop(copy)))).toEqual(['script']);
    expect(scriptCalls(await wire.during(() => drop(owned)))).toEqual(['script']);

    const plain = await store.proxyFromKey<string>(await store.put('x'));
    let adopted!: OwnedProxy<string>;
    expect(scriptCalls(await wire.during(async () => (adopted = await intoOwned(plain))))).toEqual(['script']);
    expect(scriptCalls(await wire.during(() => drop(adopted)))).toEqual(['script']);
    await wire.stop();
  });

  test('one renewal renews every handle held here, one script call each, sent together', async ({ store, redis }) => {
    const owners = await Promise.all([1, 2, 3].map((n) => store.ownedProxy({ n })));
    const borrows = await Promise.all(owners.map((o) => borrow(o)));
    const client = store.connector.client as Redis;
    const wire = await watch(redis, client);
    const seen = await wire.during(() => renewalOf(store).tick());
    // 3 owners + 3 borrows; the first call of a script on a connection may go as EVAL.
    expect(seen.map((s) => (s.command === 'eval' ? 'evalsha' : s.command))).toEqual(Array(6).fill('evalsha'));
    await wire.stop();
    for (const b of borrows) await release(b);
    for (const o of owners) await drop(o);
  });
});
