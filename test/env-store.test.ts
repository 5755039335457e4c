/**
 * A process without a registered store resolves refs through a store it
 * builds from PROXYSTORE_REDIS_URL / PROXYSTORE_REDIS_NAMESPACE. That store's
 * idle connection must not keep the process alive. (Single Redis only: the
 * environment names one URL.)
 */
import { ENV_NAMESPACE, ENV_URL, getKey, toRef } from '../src/index.js';
import { runChild } from './harness/child.js';
import { describe, expect, test } from './harness/store-fixture.js';

describe('the store built from the environment', () => {
  test('a process that resolves through PROXYSTORE_REDIS_URL exits by itself without closing anything', async ({
    store,
    redisUrl,
  }) => {
    const p = await store.proxy({ from: 'env' });
    const out = await runChild('test/children/env-resolver.ts', {
      args: [JSON.stringify(toRef(p))],
      env: { [ENV_URL]: redisUrl, [ENV_NAMESPACE]: store.namespace },
      timeoutMs: 15_000, // killed (and failed) if the idle connection kept it alive
    });
    expect(out.code, out.stderr).toBe(0);
    expect(JSON.parse(out.stdout.trim())).toEqual({ from: 'env' });
    await store.evict(getKey(p));
  });

});
