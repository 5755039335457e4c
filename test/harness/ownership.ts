/**
 * `test` for ownership suites: like ./store-fixture.js, but stricter. Owned
 * objects always carry a TTL (their lease), so the harness's leak check (keys
 * without a TTL) cannot see an ownership leak; here, once the test's store is
 * closed, its namespace must be *empty*: every owner dropped or abandoned,
 * every borrow released. Only the records of finished calls (`:done:` keys,
 * by which a resent release/drop/abandon/update recognises itself) and the
 * ended markers of closed lifetimes may stay: they always carry a TTL, which
 * the harness's own leak check verifies.
 *
 *   import { test, expect } from './harness/ownership.js';
 *   test('borrow then drop', async ({ store }) => { ... });
 *
 * `storeOptions` (an option fixture) configures that store, e.g. short leases:
 *
 *   describe('with 1 s leases', () => {
 *     test.override({ storeOptions: { leaseTtl: 1 } });
 *     ...
 *   });
 */
import { RedisConnector, Store, type StoreOptions } from '../../src/index.js';
import { namespaceKeys, test as base } from './fixtures.js';
import { connectionOptions, type RedisTarget } from './target.js';

export * from './fixtures.js';
export * from './target.js';

/** A registered store in the test's namespace (the name every child must use too), on the project's target. */
export function makeOwnershipStore(target: RedisTarget, namespace: string, options: StoreOptions = {}): Store {
  return new Store(`store-${namespace}`, new RedisConnector({ ...connectionOptions(target), namespace }), {
    register: true,
    ...options,
  });
}

/**
 * The keys of the namespace that hold objects or ownership state: every key
 * but the records of finished calls (`:done:`, kept a while with a TTL so a
 * resent release/drop/abandon/update can recognise itself), the 'ended'
 * markers of closed lifetimes (`:lt`, which expire too), and the ownership
 * records that an owned member's lifetime left as markers once it evicted the
 * object (field `ended`, with a TTL: they tell the owner why its handle is
 * invalid, docs/lifetimes.md "Owned objects in lifetimes").
 */
export async function objectLeftovers(redis: Parameters<typeof namespaceKeys>[0], namespace: string): Promise<string[]> {
  const keys = (await namespaceKeys(redis, namespace)).filter((k) => !/\}:(done:|lt$)/.test(k));
  const markers = await Promise.all(
    keys.map(async (k) => /\}:own:/.test(k) && (await redis.hexists(k, 'ended')) === 1 && (await redis.pttl(k)) > 0),
  );
  return keys.filter((_, i) => !markers[i]);
}

export const test = base
  .extend('storeOptions', {} as StoreOptions)
  .extend('store', async ({ target, namespace, redis, storeOptions, onTestFinished }, { onCleanup }) => {
    const store = makeOwnershipStore(target, namespace, storeOptions);
    let left: string[] = [];
    onCleanup(async () => {
      await store.close();
      left = await objectLeftovers(redis, namespace);
    });
    onTestFinished(({ task }) => {
      if (left.length > 0 && task.result?.state !== 'fail') {
        throw new Error(`Ownership leak check: after store.close() namespace ${namespace} still holds:\n  ${left.join('\n  ')}`);
      }
    });
    return store;
  });

export const it = test;
