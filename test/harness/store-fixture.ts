/**
 * `test` with a `store` fixture on top of ./fixtures.js: a Store in the test's namespace,
 * closed after the test and before the leak check looks at the namespace.
 *
 *   import { test, expect } from './harness/store-fixture.js';
 *   test('put then get', async ({ store }) => { ... });
 *
 * Kept apart from ./fixtures.js so that harness tests do not import src/.
 */
import { RedisConnector, Store } from '../../src/index.js';
import { test as base } from './fixtures.js';

export * from './fixtures.js';

/** The one place that knows how a test store is built (registered, so refs resolve in-process). */
export function makeStore(redisUrl: string, namespace: string): Store {
  return new Store(`store-${namespace}`, new RedisConnector({ url: redisUrl, namespace }), { register: true });
}

export const test = base.extend('store', async ({ redisUrl, namespace }, { onCleanup }) => {
  const store = makeStore(redisUrl, namespace);
  onCleanup(async () => {
    await store.close();
  });
  return store;
});

export const it = test;
