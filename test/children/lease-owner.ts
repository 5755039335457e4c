/**
 * Creates a LeaseLifetime of LEASE_SECONDS, puts objects under it, sends
 * { keys, lifetimeId, pttls } (the Redis TTLs of its objects, as it sees
 * them), closes its store and exits: nothing of this process is left to
 * end the lease.
 */
import { LeaseLifetime, RedisConnector, Store, getKey } from '../../src/index.js';
import { CHILD_ENV } from '../harness/child.js';
import { connectionOptions, targetFromEnv } from '../harness/target.js';

const store = new Store('lease-child', new RedisConnector({
  ...connectionOptions(targetFromEnv()),
  namespace: process.env[CHILD_ENV.namespace] as string,
}));
const lifetime = new LeaseLifetime(store, { expiry: Number(process.env.LEASE_SECONDS) });
const keys = [
  await store.put({ a: 1 }, { lifetime }),
  ...(await store.putBatch(['b', 'c'], { lifetime })),
  getKey(await store.proxy([1, 2, 3], { lifetime })),
];
const client = store.connector.client;
const pttls = await Promise.all(keys.map((k) => client.pttl(store.connector.dataKey(k))));
await store.close();
process.send?.({ keys, lifetimeId: lifetime.id, pttls }, () => process.disconnect());
