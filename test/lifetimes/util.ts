/** Helpers shared by the lifetime tests. */
import type { Cluster, Redis } from 'ioredis';
import type { Store } from '../../src/index.js';
import { namespaceKeys } from '../harness/fixtures.js';

// Every master of a Cluster, not the one node a plain SCAN would reach.
export { namespaceKeys };

/** Poll `cond` until it holds; fail naming `what` after `timeoutMs` (generous: machines are loaded). */
export async function waitUntil(cond: () => Promise<boolean>, what: string, timeoutMs = 20_000, intervalMs = 50): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await cond()) return;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting until ${what}`);
    await new Promise((r) => setTimeout(r, intervalMs));
  }
}

/** The Redis keys of a lifetime (see src/lifetimes/base.ts). */
export function lifetimeKeys(
  store: Store,
  id: string,
): { meta: string; members: string; foreign: string; ends: string; evicting: string; futures: string; dedupe: string } {
  return {
    meta: store.connector.keys.lifetime('lt', id),
    members: store.connector.keys.lifetime('members', id),
    foreign: store.connector.keys.lifetime('foreign', id),
    ends: store.connector.keys.lifetime('ends', id),
    evicting: store.connector.keys.lifetime('evicting', id),
    futures: store.connector.keys.lifetime('futures', id),
    dedupe: store.connector.keys.lifetime('dedupe', id),
  };
}

/** The `foreign` argument the library gives the close and extend scripts on this store's Redis. */
export function foreignMode(store: Store): 'touch' | 'return' {
  return store.connector.isCluster ? 'return' : 'touch';
}

/** How many data keys (objects) a namespace holds. */
export async function objectCount(redis: Redis | Cluster, namespace: string): Promise<number> {
  return (await namespaceKeys(redis, namespace)).filter((k) => /:d:/.test(k)).length;
}
