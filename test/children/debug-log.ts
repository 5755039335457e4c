/** Puts, gets and consumes one object with DEBUG set by the parent; logs go to stderr. */
import { RedisConnector, Store, fromRef, resolve, toRef } from '../../src/index.js';
import { CHILD_ENV } from '../harness/child.js';
import { connectionOptions, targetFromEnv } from '../harness/target.js';

const store = new Store(
  'debug-child',
  new RedisConnector({ ...connectionOptions(targetFromEnv()), namespace: process.env[CHILD_ENV.namespace] as string }),
  { register: true },
);
const key = await store.put({ hello: 'world' });
await store.get(key);
await store.evict(key);
const p = await store.proxy([1, 2, 3], { evict: true });
await resolve(fromRef(toRef(p)));
process.send?.({ key, ephemeral: toRef(p).key }, () => {
  void store.close().then(() => process.disconnect());
});
