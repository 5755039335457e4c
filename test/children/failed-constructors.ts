/**
 * Makes stores whose constructors throw (bad options, a duplicate registered
 * name, a bad config) against REDIS_URL, prints the error names, and closes
 * nothing: the process must still exit by itself, so nothing may be left open.
 */
import { RedisConnector, Store } from '../../src/index.js';
import { CHILD_ENV } from '../harness/child.js';

const url = process.env[CHILD_ENV.redisUrl] as string;
const namespace = process.env[CHILD_ENV.namespace] as string;
const errors: string[] = [];
function attempt(make: () => unknown): void {
  try {
    make();
    errors.push('no error');
  } catch (err) {
    errors.push((err as Error).name);
  }
}

attempt(() => new Store('bad-lease', new RedisConnector({ url, namespace }), { leaseTtl: 1e17 }));
attempt(() => new Store('typo', new RedisConnector({ url, namespace }), { leaseTTl: 5 } as never));
const first = new Store('twice', new RedisConnector({ url, namespace }), { register: true });
const key = await first.put('used, so its connection is open');
attempt(() => new Store('twice', new RedisConnector({ url, namespace }), { register: true }));
attempt(() => Store.fromConfig({ ...first.config(), leaseTtl: -1 }));
attempt(() => Store.fromConfig(first.config())); // the name is still registered
await first.evict(key);
await first.close();
console.log(JSON.stringify(errors));
