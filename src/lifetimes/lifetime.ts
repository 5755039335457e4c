/**
 * The `Lifetime` interface shared by ContextLifetime, LeaseLifetime and
 * StaticLifetime (ProxyStore's `proxystore.store.lifetimes.Lifetime`).
 *
 * @module
 */
import type { Store } from '../store.js';

/** Internal: how a Store writes new objects as members of a lifetime (one round trip). */
export const kLifetimePut: unique symbol = Symbol.for('proxystore-redis.lifetime.put');

/**
 * Something that evicts its objects when it ends.
 *
 * @example
 * ```ts
 * await using lifetime = new ContextLifetime(store);
 * const key = await store.put(value, { lifetime });
 * // leaving the block closes the lifetime and evicts `key`
 * ```
 */
export interface Lifetime {
  /** The lifetime's id (its Redis hash tag). */
  readonly id: string;
  /** Associate existing keys with this lifetime. */
  addKey(...keys: string[]): Promise<void>;
  /** Associate the targets of proxies with this lifetime. */
  addProxy(...proxies: unknown[]): Promise<void>;
  /** End the lifetime and evict its objects (idempotent). */
  close(options?: { closeStores?: boolean }): Promise<void>;
  /** Whether the lifetime has ended, as Redis sees it. */
  done(): Promise<boolean>;
  /** `await using lifetime = ...` closes the lifetime at the end of the block. */
  [Symbol.asyncDispose](): Promise<void>;
  /**
   * @internal Store `values` as new members, in one round trip, and return
   * their keys.
   */
  [kLifetimePut](store: Store, values: Buffer[]): Promise<string[]>;
}

/** Whether a value implements {@link Lifetime}. */
export function isLifetime(value: unknown): value is Lifetime {
  return typeof value === 'object' && value !== null && typeof (value as Partial<Lifetime>)[kLifetimePut] === 'function';
}
