/** Helpers shared by the lifetime tests. */
import type { Redis } from 'ioredis';
import type { Store } from '../../src/index.js';

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
export function lifetimeKeys(store: Store, id: string): { meta: string; members: string; foreign: string } {
  return {
    meta: store.connector.keys.lifetime('lt', id),
    members: store.connector.keys.lifetime('members', id),
    foreign: store.connector.keys.lifetime('foreign', id),
  };
}

/** Every key of a namespace, sorted. */
export async function namespaceKeys(redis: Redis, namespace: string): Promise<string[]> {
  const keys = new Set<string>();
  let cursor = '0';
  do {
    const [next, batch] = await redis.scan(cursor, 'MATCH', `${namespace}:*`, 'COUNT', 1000);
    cursor = next;
    for (const k of batch) keys.add(k);
  } while (cursor !== '0');
  return [...keys].sort();
}

/** How many data keys (objects) a namespace holds. */
export async function objectCount(redis: Redis, namespace: string): Promise<number> {
  return (await namespaceKeys(redis, namespace)).filter((k) => /:d:/.test(k)).length;
}
