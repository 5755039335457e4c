/**
 * Owned members borrowed by other processes when their lifetime ends (real
 * child processes, test/children/ownership-peer.ts; leases of 1 s), on a
 * single Redis and on the Cluster:
 *
 * - a ContextLifetime closed while a child borrows: the object stays for the
 *   child, which reads and releases it; the release evicts it;
 * - the borrowing child SIGKILLed after the close: the object goes once its
 *   lease lapsed (at its keys' expiry, three leases later at the latest);
 * - a LeaseLifetime that runs out while a child borrows: the object outlives
 *   the lease while the child lives (its heartbeat renews the borrow), and
 *   goes at the child's release.
 */
import { ContextLifetime, LeaseLifetime, LifetimeEndedError, borrow, getKey, mutBorrow, toRef, type Store } from '../../src/index.js';
import { killAllChildren } from '../harness/child.js';
import { afterEach, describe, expect, test } from '../harness/ownership.js';
import { startPeer } from '../harness/peer.js';
import { waitUntil } from './util.js';

const LEASE_TTL = 1;

afterEach(async () => {
  await killAllChildren();
});

async function stored(store: Store, key: string): Promise<boolean> {
  return (await store.connector.client.exists(store.connector.dataKey(key))) === 1;
}

describe('owned members borrowed by other processes at their lifetime end', () => {
  test.override({ storeOptions: { leaseTtl: LEASE_TTL } });

  test('closed while a child borrows: kept for the child, evicted at its release', async ({ store, redisUrl, namespace }) => {
    const lifetime = new ContextLifetime(store);
    const owned = await store.ownedProxy({ n: 7 }, { lifetime });
    const peer = await startPeer({ redisUrl, namespace }, LEASE_TTL);
    expect((await peer.ok({ op: 'receive', slot: 'b', ref: toRef(await borrow(owned)) })).value).toEqual({ n: 7 });
    await lifetime.close();
    // Several leases later the child still holds it (its heartbeat renews the borrow).
    await new Promise((r) => setTimeout(r, 2500));
    expect(await stored(store, getKey(owned))).toBe(true);
    // The child reads it again after the close (a fresh resolve, checked in Redis: the borrow's lease still holds).
    const sent = await peer.ok({ op: 'send', slot: 'b' });
    expect((await peer.ok({ op: 'receive', slot: 'again', ref: sent.ref })).value).toEqual({ n: 7 });
    await expect(borrow(owned)).rejects.toThrow(LifetimeEndedError);
    await expect(mutBorrow(owned)).rejects.toThrow(LifetimeEndedError);
    await peer.ok({ op: 'release', slot: 'again' });
    expect(await stored(store, getKey(owned))).toBe(false);
    await peer.ok({ op: 'exit' });
  });

  test('the borrowing child killed after the close: the object goes once its lease lapsed', async ({ store, redisUrl, namespace }) => {
    const lifetime = new ContextLifetime(store);
    const owned = await store.ownedProxy({ n: 8 }, { lifetime });
    const peer = await startPeer({ redisUrl, namespace }, LEASE_TTL);
    await peer.ok({ op: 'receive', slot: 'w', ref: toRef(await mutBorrow(owned)) });
    await lifetime.close();
    expect(await stored(store, getKey(owned))).toBe(true);
    peer.child.kill('SIGKILL');
    await peer.child.exited.catch(() => {});
    const killedAt = Date.now();
    // Its keys expire three leases after the lapsed lease at the latest (the outage margin).
    await waitUntil(async () => !(await stored(store, getKey(owned))), 'the killed borrower lapsed', 10_000);
    expect(Date.now() - killedAt).toBeLessThan(8_000);
    await expect(borrow(owned)).rejects.toThrow(/LifetimeEnded|invalid/);
  });

  test('a lease that runs out while a child borrows: kept past the lease end while the child lives, evicted at its release', async ({
    store,
    redisUrl,
    namespace,
  }) => {
    // The child first: it may take seconds to start on a loaded machine.
    const peer = await startPeer({ redisUrl, namespace }, LEASE_TTL);
    const lifetime = new LeaseLifetime(store, { expiry: 2 });
    const owned = await store.ownedProxy({ n: 9 }, { lifetime });
    await peer.ok({ op: 'receive', slot: 'b', ref: toRef(await borrow(owned)) });
    await waitUntil(() => lifetime.done(), 'the lease ran out');
    await new Promise((r) => setTimeout(r, 2500));
    expect(await stored(store, getKey(owned))).toBe(true);
    await expect(borrow(owned)).rejects.toThrow(LifetimeEndedError);
    await peer.ok({ op: 'release', slot: 'b' });
    expect(await stored(store, getKey(owned))).toBe(false);
    await peer.ok({ op: 'exit' });
  });
});
