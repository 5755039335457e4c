/**
 * A renewal that fails (Redis unreachable, a failover, a slot migrating: here a
 * ClusterReconfiguringError injected into the renew calls) is tried again soon,
 * after leaseTtl / 10 and then twice as long each time up to the renewal
 * period, rather than a whole period later (issue 12, point 4). What is
 * checked is the schedule the library sets, not how fast timers fire.
 */
import { ClusterReconfiguringError, RedisConnector, StaticLifetime, Store, borrow, drop, release } from '../src/index.js';
import { kResetStatic } from '../src/lifetimes/static.js';
import { renewalOf } from '../src/ownership/renewal.js';
import { afterEach, describe, expect, test } from './harness/fixtures.js';
import { waitUntil } from './lifetimes/util.js';

afterEach(() => {
  StaticLifetime[kResetStatic]();
});

/** Make every call of script `name` fail while `failing.on` is set; counts the calls. */
function failWhile(store: Store, name: string): { on: boolean; calls: number } {
  const state = { on: true, calls: 0 };
  const scripts = store.connector.scripts;
  const run = scripts.run.bind(scripts);
  scripts.run = (async (...args: Parameters<typeof run>) => {
    if (args[0] !== name) return run(...args);
    state.calls++;
    if (state.on) throw new ClusterReconfiguringError(`Redis ${name} failed: the Redis Cluster is reconfiguring (injected)`, { mayHaveRun: false });
    return run(...args);
  }) as typeof run;
  return state;
}

/** The distinct values `read` takes while `until` is false, polled every 5 ms. */
async function watch<T>(read: () => T, until: () => boolean, timeoutMs = 15_000): Promise<T[]> {
  const seen: T[] = [];
  const deadline = Date.now() + timeoutMs;
  while (!until() && Date.now() < deadline) {
    const v = read();
    if (v !== undefined && seen[seen.length - 1] !== v) seen.push(v);
    await new Promise((r) => setTimeout(r, 5));
  }
  return seen;
}

function storeFor(redisUrl: string, namespace: string): Store {
  return new Store(`renewal-${namespace}`, new RedisConnector({ url: redisUrl, namespace }), { leaseTtl: 3 });
}

describe('a failed renewal is retried soon', () => {
  test('ownership: after leaseTtl / 10, then twice as long, up to the period; a renewal that goes through ends the retries', async ({ redisUrl, namespace }) => {
    const store = storeFor(redisUrl, namespace);
    try {
      const owned = await store.ownedProxy({ n: 1 });
      const renewal = renewalOf(store);
      const failing = failWhile(store, 'renew');
      await renewal.tick();
      expect(renewal.retryScheduledMs).toBe(300);
      const delays = await watch(() => renewal.retryScheduledMs, () => failing.calls >= 5);
      expect(delays.slice(0, 3)).toEqual([300, 600, 1000]);
      failing.on = false;
      await waitUntil(async () => renewal.retryScheduledMs === undefined, 'the retries stop once a renewal went through');
      // The owner kept its lease throughout.
      const shared = await borrow(owned);
      await release(shared);
      await drop(owned);
    } finally {
      await store.close();
    }
  });

  test('StaticLifetime: the heartbeat that failed is retried after leaseTtl / 10, then twice as long', async ({ redisUrl, namespace }) => {
    const store = storeFor(redisUrl, namespace);
    try {
      const lifetime = StaticLifetime.instance();
      const key = await store.put('static', { lifetime });
      const failing = failWhile(store, 'lifetimeExtend');
      const delays = await watch(() => lifetime.retryScheduledMs(store), () => failing.calls >= 4);
      expect(delays.slice(0, 3)).toEqual([300, 600, 1000]);
      failing.on = false;
      await waitUntil(async () => lifetime.retryScheduledMs(store) === undefined, 'the retries stop once a renewal went through');
      expect(await store.exists(key)).toBe(true);
    } finally {
      await store.close();
    }
  });
});
