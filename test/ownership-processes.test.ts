/**
 * Ownership across real processes: borrows and owners move through refs,
 * the receiver takes them over (renewal included), and a killed holder stops
 * blocking within its lease. Leases are 1 s here (children get LEASE_TTL=1).
 */
import {
  BorrowedError,
  MutableBorrowError,
  ReferenceInvalidError,
  borrow,
  drop,
  fromRef,
  getKey,
  isValid,
  mutBorrow,
  release,
  resolve,
  toRef,
  type Store,
} from '../src/index.js';
import { childEnv, killAllChildren, runChild } from './harness/child.js';
import { afterEach, describe, expect, test } from './harness/ownership.js';
import { startPeer } from './harness/peer.js';

const LEASE_TTL = 1;

afterEach(async () => {
  await killAllChildren();
});

/** Poll `attempt` until it stops throwing; returns how long that took. */
async function eventually(attempt: () => Promise<unknown>, timeoutMs: number): Promise<number> {
  const start = Date.now();
  for (;;) {
    try {
      await attempt();
      return Date.now() - start;
    } catch (err) {
      if (Date.now() - start > timeoutMs) throw err;
      await new Promise((r) => setTimeout(r, 50));
    }
  }
}

/** How many of an owned object's keys (data, record, leases) exist. */
async function objectKeyCount(store: Store, key: string): Promise<number> {
  const keys = store.connector.keys;
  return store.connector.client.exists(keys.object('d', key), keys.object('own', key), keys.object('lease', key));
}

describe('handles moved to other processes', () => {
  test.override({ storeOptions: { leaseTtl: LEASE_TTL } });

  test('a borrow resolved and released in a child lets the parent drop', async ({ store, redisUrl, namespace }) => {
    const owned = await store.ownedProxy([1, 2, 3]);
    const shared = await borrow(owned);
    const peer = await startPeer({ redisUrl, namespace }, LEASE_TTL);
    expect((await peer.ok({ op: 'receive', slot: 'b', ref: toRef(shared) })).value).toEqual([1, 2, 3]);
    expect(isValid(shared)).toBe(false);
    // The child holds the borrow now: the owner cannot drop.
    await expect(drop(owned)).rejects.toThrow(BorrowedError);
    await peer.ok({ op: 'release', slot: 'b' });
    await drop(owned);
    expect(await store.exists(getKey(owned))).toBe(false);
    await peer.ok({ op: 'exit' });
  });

  test('a child holding a borrow that is SIGKILLed stops blocking drop after leaseTtl', async ({ store, redisUrl, namespace }) => {
    const owned = await store.ownedProxy({ big: 'array' });
    const peer = await startPeer({ redisUrl, namespace }, LEASE_TTL);
    await peer.ok({ op: 'receive', slot: 'b', ref: toRef(await borrow(owned)) });
    // Alive, the child renews its borrow: drop is refused, even after a lease's length.
    await new Promise((r) => setTimeout(r, LEASE_TTL * 1000 * 1.5));
    await expect(drop(owned)).rejects.toThrow(BorrowedError);

    peer.child.kill('SIGKILL');
    await peer.child.exited;
    const tookMs = await eventually(() => drop(owned), LEASE_TTL * 1000 + 5_000);
    console.info(`drop succeeded ${tookMs} ms after the borrower was SIGKILLed (leaseTtl ${LEASE_TTL * 1000} ms)`);
    expect(await store.exists(getKey(owned))).toBe(false);
  });

  test('a mutable borrow held in a child makes borrow in the parent fail, until released', async ({ store, redisUrl, namespace }) => {
    const owned = await store.ownedProxy({ n: 1 });
    const peer = await startPeer({ redisUrl, namespace }, LEASE_TTL);
    await peer.ok({ op: 'receive', slot: 'm', ref: toRef(await mutBorrow(owned)) });
    await expect(borrow(owned)).rejects.toThrow(MutableBorrowError);
    await expect(mutBorrow(owned)).rejects.toThrow(MutableBorrowError);
    // The holder of a mutable borrow can update the object.
    await peer.ok({ op: 'set', slot: 'm', value: 2 });
    await peer.ok({ op: 'release', slot: 'm' });
    const fresh = await borrow(owned, { populateTarget: false });
    expect(await resolve(fresh)).toEqual({ n: 2 });
    await release(fresh);
    await drop(owned);
    await peer.ok({ op: 'exit' });
  });

  // `store: _store`: this process must have the store registered to revive the handle.
  test('a mutable borrow held in the parent makes borrow in the owning child fail', async ({ store: _store, redisUrl, namespace }) => {
    const peer = await startPeer({ redisUrl, namespace }, LEASE_TTL);
    await peer.ok({ op: 'own', slot: 'o', value: { n: 1 } });
    await peer.ok({ op: 'mutBorrow', slot: 'o', as: 'm' });
    const { ref } = await peer.ok({ op: 'send', slot: 'm' });
    const mutable = fromRef<{ n: number }>(ref);
    await resolve(mutable);
    const refused = await peer.call({ op: 'borrow', slot: 'o', as: 'b' });
    expect(refused).toMatchObject({ ok: false, name: 'MutableBorrowError' });
    expect(refused.message).toMatch(/is mutably borrowed/);
    await release(mutable as never);
    await peer.ok({ op: 'borrow', slot: 'o', as: 'b' });
    await peer.ok({ op: 'release', slot: 'b' });
    await peer.ok({ op: 'drop', slot: 'o' });
    await peer.ok({ op: 'exit' });
  });

  test('an OwnedProxy sent to a child moves ownership there', async ({ store, redisUrl, namespace }) => {
    const owned = await store.ownedProxy(['moved']);
    const peer = await startPeer({ redisUrl, namespace }, LEASE_TTL);
    await peer.ok({ op: 'receive', slot: 'o', ref: toRef(owned) });
    expect(isValid(owned)).toBe(false);
    await expect(borrow(owned)).rejects.toThrow(ReferenceInvalidError);
    await expect(drop(owned)).rejects.toThrow(ReferenceInvalidError);
    // The new owner lends and drops.
    await peer.ok({ op: 'borrow', slot: 'o', as: 'b' });
    await peer.ok({ op: 'release', slot: 'b' });
    await peer.ok({ op: 'drop', slot: 'o' });
    expect(await store.exists(getKey(owned))).toBe(false);
    await peer.ok({ op: 'exit' });
  });

  test('an owner whose process is SIGKILLed leaves nothing behind once its lease ends', async ({ store, redisUrl, namespace }) => {
    const peer = await startPeer({ redisUrl, namespace }, LEASE_TTL);
    await peer.ok({ op: 'own', slot: 'o', value: 'orphan-to-be' });
    await peer.ok({ op: 'borrow', slot: 'o', as: 'b' });
    const { ref } = await peer.ok({ op: 'send', slot: 'o' });
    // Send the owner back and forth to learn its key, then leave it with the child.
    await peer.ok({ op: 'receive', slot: 'o', ref });
    const key = (ref as { key: string }).key;
    expect((await objectKeyCount(store, key))).toBe(3);
    peer.child.kill('SIGKILL');
    await peer.child.exited;
    // Its keys expire 3 leaseTtl (the outage margin) after its last lease ends.
    await eventually(async () => expect((await objectKeyCount(store, key))).toBe(0), 4 * LEASE_TTL * 1000 + 5_000);
  });

  test('a ref waiting longer than the lease does not expire: its sender renews it until claimed', async ({
    store,
    redisUrl,
    namespace,
  }) => {
    const owned = await store.ownedProxy('queued');
    const ref = toRef(await borrow(owned));
    await new Promise((r) => setTimeout(r, LEASE_TTL * 1000 * 2.5));
    const peer = await startPeer({ redisUrl, namespace }, LEASE_TTL);
    expect((await peer.ok({ op: 'receive', slot: 'b', ref })).value).toBe('queued');
    await expect(drop(owned)).rejects.toThrow(BorrowedError);
    await peer.ok({ op: 'release', slot: 'b' });
    await drop(owned);
    await peer.ok({ op: 'exit' });
  });

  test('handles held here outlive their lease while the process lives', async ({ store }) => {
    const owned = await store.ownedProxy([1]);
    const shared = await borrow(owned);
    const dataKey = store.connector.keys.object('d', getKey(owned));
    // The object's keys expire with its last lease (plus the outage margin of 3 leaseTtl)...
    const ttl = await store.connector.client.pttl(dataKey);
    expect(ttl).toBeGreaterThan(3 * LEASE_TTL * 1000);
    expect(ttl).toBeLessThanOrEqual(4 * LEASE_TTL * 1000);
    // ...and the heartbeat keeps renewing them.
    await new Promise((r) => setTimeout(r, LEASE_TTL * 1000 * 2.5));
    expect(await store.exists(getKey(owned))).toBe(true);
    await release(shared);
    await drop(owned);
  });
});

test('renewal does not keep a finished process alive', async ({ redisUrl, namespace, store }) => {
  const out = await runChild('test/children/idle-holder.ts', { env: childEnv({ redisUrl, namespace }), timeoutMs: 15_000 });
  // On the test cluster (cluster-node-timeout 2 s) a 1 s leaseTtl rightly gets the library's failover warning.
  expect(out.stderr.replace(/^.*(ProxyStoreWarning: .* shorter than a failover|Use `node --trace-warnings).*\n?/gm, '')).toBe('');
  expect(out.code).toBe(0);
  const { key } = out.messages[0] as { key: string };
  // The dead holder's object goes away by itself when its 1 s lease ends (its keys 3 s later: the outage margin).
  await eventually(async () => expect((await objectKeyCount(store, key))).toBe(0), 10_000);
});
