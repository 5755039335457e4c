/**
 * Exercises the FinalizationRegistry backstop; must run with --expose-gc.
 * Sends one message: { ownerEvicted, orphanKeptWhileBorrowed, orphanEvictedOnRelease, borrowReleased }.
 */
import { RedisConnector, Store, borrow, getKey, mutBorrow, release, drop, type OwnedProxy, type RefProxy } from '../../src/index.js';
import { CHILD_ENV } from '../harness/child.js';
import { connectionOptions, targetFromEnv } from '../harness/target.js';

const namespace = process.env[CHILD_ENV.namespace] as string;
const store = new Store(`store-${namespace}`, new RedisConnector({ ...connectionOptions(targetFromEnv()), namespace }), {
  register: true,
});
const gc = (globalThis as { gc?: () => void }).gc;
if (!gc) throw new Error('run with --expose-gc');

/** Collect garbage until `done()` holds (finalizers run some time after a collection). */
async function collectUntil(done: () => Promise<boolean>, timeoutMs = 10_000): Promise<boolean> {
  const until = Date.now() + timeoutMs;
  while (Date.now() < until) {
    gc!();
    await new Promise((r) => setTimeout(r, 20));
    if (await done()) return true;
  }
  return false;
}

const ownerOf = (key: string) => store.connector.client.hget(store.connector.keys.object('own', key), 'owner');

// An owner that goes out of scope unborrowed: its object is evicted.
async function forgottenOwner(): Promise<string> {
  const owned = await store.ownedProxy('value');
  return getKey(owned);
}
const key1 = await forgottenOwner();
const ownerEvicted = await collectUntil(async () => !(await store.exists(key1)));

// An owner collected while borrowed: kept until its last borrow ends.
async function borrowedThenForgotten(): Promise<RefProxy<number[]>> {
  const owned = await store.ownedProxy([1, 2, 3]);
  return borrow(owned);
}
const shared = await borrowedThenForgotten();
const key2 = getKey(shared);
const orphaned = await collectUntil(async () => (await ownerOf(key2)) === '');
const orphanKeptWhileBorrowed = orphaned && (await store.exists(key2));
await release(shared);
const orphanEvictedOnRelease = !(await store.exists(key2));

// A borrow that goes out of scope is released: the owner can borrow mutably again.
const owner3: OwnedProxy<string> = await store.ownedProxy('three');
async function forgottenBorrow(): Promise<void> {
  await borrow(owner3);
}
await forgottenBorrow();
const borrowReleased = await collectUntil(async () => {
  try {
    await release(await mutBorrow(owner3));
    return true;
  } catch {
    return false;
  }
});
await drop(owner3);

process.send?.({ ownerEvicted, orphanKeptWhileBorrowed, orphanEvictedOnRelease, borrowReleased }, () => {
  void store.close().then(() => process.disconnect());
});
