import assert from 'node:assert/strict';
import {
  BorrowedError,
  MutableBorrowError,
  RedisConnector,
  Store,
  borrow,
  drop,
  fromRef,
  mutBorrow,
  release,
  resolve,
  submit,
  update,
  type ProxyRef,
} from 'proxystore-redis';

const store = new Store('default', new RedisConnector({
  url: process.env.PROXYSTORE_REDIS_URL ?? 'redis://127.0.0.1:6379',
  namespace: process.env.PROXYSTORE_REDIS_NAMESPACE ?? 'app',
}), { register: true });

const owned = await store.ownedProxy({ count: 0 }); // one owner per object

// Any number of shared borrows, or one mutable borrow: checked in Redis, in every process.
const reader = await borrow(owned);
await assert.rejects(mutBorrow(owned), MutableBorrowError);
await assert.rejects(drop(owned), BorrowedError); // no drop while borrowed
await release(reader);

const writer = await mutBorrow(owned);
(await resolve(writer)).count = 1;
await update(writer); // writes the target back, with the rule check, in one script
await release(writer);

// submit: the borrows passed to a task end when the task settles, even when it fails.
const task = async (ref: ProxyRef) => (await resolve(fromRef<{ count: number }>(ref))).count;
assert.equal(await submit(task, { args: [await borrow(owned)] }), 1);

await drop(owned); // no borrow is left: the object is evicted
await store.close();
