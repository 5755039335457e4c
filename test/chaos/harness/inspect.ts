/**
 * Test-only views of library internals that the chaos suite needs to measure what the public
 * API cannot show: the Cluster slot of a store key or lifetime, the token of an ownership handle,
 * the Redis keys holding an object's leases and a lease lifetime's end. All of it is here, so a
 * change of the key layout (issues 10 and 12) is followed in this one file.
 */
import calculateSlot from 'cluster-key-slot';
import type { Cluster, Redis } from 'ioredis';
import type { Store } from '../../../src/index.js';
import { proxyState } from '../../../src/proxy/proxy.js';

/** The Cluster slot of a store key (every Redis key of an object shares it). */
export function slotOfKey(store: Store, key: string): number {
  return calculateSlot(store.connector.dataKey(key));
}

/** The Cluster slot of a lifetime's own keys (and of the objects put under it). */
export function slotOfLifetime(store: Store, lifetimeId: string): number {
  return calculateSlot(store.connector.keys.lifetime('lt', lifetimeId));
}

/** The ownership token of an OwnedProxy, RefProxy or RefMutProxy. */
export function handleToken(handle: unknown): string | undefined {
  return proxyState(handle)?.token;
}

/**
 * Whether Redis holds a live lease for `token` on the object `key` (its lease end is still in
 * the future): after an acknowledged release, that means the release was undone.
 */
export async function leaseAlive(client: Redis | Cluster, store: Store, key: string, token: string): Promise<boolean> {
  const score = await client.zscore(store.connector.keys.object('lease', key), token);
  return score !== null && Number(score) > Date.now();
}

/** A lease lifetime's end as recorded in its meta (epoch ms), or undefined once it is gone. */
export async function leaseEnd(client: Redis | Cluster, store: Store, lifetimeId: string): Promise<number | undefined> {
  const end = await client.hget(store.connector.keys.lifetime('lt', lifetimeId), 'expiresAt');
  return end === null ? undefined : Number(end);
}

/** PEXPIRETIME of each object's data key: epoch ms, -1 without expiry, -2 when missing. */
export async function dataExpireTimes(client: Redis | Cluster, store: Store, keys: string[]): Promise<number[]> {
  return Promise.all(keys.map(async (key) => Number(await client.call('PEXPIRETIME', store.connector.dataKey(key)))));
}
