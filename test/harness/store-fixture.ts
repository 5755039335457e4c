/**
 * `test` with library fixtures on top of ./fixtures.js:
 *
 * - `store`    a registered Store in the test's namespace, on the project's target (a single
 *              Redis or a Redis Cluster), closed after the test and before the leak check.
 * - `connect`  builds more RedisConnectors on the same target: `connect()` in the test's
 *              namespace, `connect({ namespace, commandTimeout, ... })` otherwise; all are
 *              closed after the test.
 *
 *   import { test, expect } from './harness/store-fixture.js';
 *   test('put then get', async ({ store }) => { ... });
 *
 * Kept apart from ./fixtures.js so that harness tests do not import src/.
 */
import { RedisConnector, Store, type RedisConnectorOptions } from '../../src/index.js';
import { test as base } from './fixtures.js';
import { connectionOptions, type RedisTarget } from './target.js';

export * from './fixtures.js';
export * from './target.js';

/** The one place that knows how a test store is built (registered, so refs resolve in-process). */
export function makeStore(target: RedisTarget, namespace: string): Store {
  return new Store(`store-${namespace}`, new RedisConnector({ ...connectionOptions(target), namespace }), {
    register: true,
  });
}

type ConnectOptions = Partial<Omit<RedisConnectorOptions, 'url' | 'nodes' | 'client'>>;

export const test = base
  .extend('store', async ({ target, namespace }, { onCleanup }) => {
    const store = makeStore(target, namespace);
    onCleanup(async () => {
      await store.close();
    });
    return store;
  })
  .extend('connect', async ({ target, namespace }, { onCleanup }) => {
    const made: RedisConnector[] = [];
    onCleanup(async () => {
      await Promise.all(made.map((c) => c.close()));
    });
    return (options: ConnectOptions = {}): RedisConnector => {
      const connector = new RedisConnector({ namespace, ...options, ...connectionOptions(target) });
      made.push(connector);
      return connector;
    };
  });

export const it = test;
