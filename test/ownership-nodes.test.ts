/**
 * Ownership with handles spread over every node (on the `cluster` project,
 * a 3-master Redis Cluster): every script touches keys of one hash tag,
 * clone's COPY stays in its source's slot, and the heartbeat renews handles
 * on all nodes past their lease.
 */
import { Cluster } from 'ioredis';
import {
  MutableBorrowError,
  borrow,
  clone,
  drop,
  fromRef,
  getKey,
  mutBorrow,
  release,
  resolve,
  toRef,
  update,
  type RefMutProxy,
} from '../src/index.js';
import { describe, expect, objectLeftovers, test } from './harness/ownership.js';

describe('owners on every node', () => {
  test.override({ storeOptions: { leaseTtl: 1 } });

  test('are borrowed, renewed past their lease, cloned, updated and dropped', { timeout: 60_000 }, async ({
    store,
    redis,
    target,
    namespace,
  }) => {
    const owners = await Promise.all(Array.from({ length: 9 }, (_, i) => store.ownedProxy({ i })));
    const shared = await Promise.all(owners.map((o) => borrow(o)));
    const raw: unknown = redis;
    if (target.kind === 'cluster' && raw instanceof Cluster) {
      // The objects are spread over the masters.
      const perNode = await Promise.all(raw.nodes('master').map((n) => n.keys(`${namespace}:{*`)));
      expect(perNode.filter((keys) => keys.length > 0).length).toBeGreaterThan(1);
    }
    // Past two lease lengths, the heartbeat has kept every handle alive.
    await new Promise((r) => setTimeout(r, 2_500));
    for (const b of shared) await release(b);

    const copy = await clone(owners[0]!);
    expect(await resolve(fromRef(toRef(await borrow(copy))))).toEqual({ i: 0 });
    const writer = fromRef<{ i: number }>(toRef(await mutBorrow(owners[1]!))) as RefMutProxy<{ i: number }>;
    await expect(borrow(owners[1]!)).rejects.toThrow(MutableBorrowError);
    (await resolve(writer)).i = 100;
    await update(writer);
    await release(writer);
    expect(await store.get(getKey(owners[1]!))).toEqual({ i: 100 });
    for (const o of owners) await drop(o);
    await store.close();
    // The borrow of the clone still held at close was released, the clone dropped: nothing is left.
    expect(await objectLeftovers(redis, namespace)).toEqual([]);
  });
});
