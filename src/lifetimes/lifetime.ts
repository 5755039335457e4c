/**
 * The `Lifetime` interface shared by ContextLifetime, LeaseLifetime and
 * StaticLifetime (ProxyStore's `proxystore.store.lifetimes.Lifetime`).
 *
 * @module
 */
import type { PutValue } from '../chunks/put.js';
import type { Store } from '../store.js';
import type { ObjectRules } from './base.js';

/** Internal: how a Store writes new objects as members of a lifetime (one round trip). */
export const kLifetimePut: unique symbol = Symbol.for('proxystore-redis.lifetime.put');

/** Internal: how a Store adds existing keys of its own to a lifetime (`proxyFromKey`). */
export const kLifetimeAddKeys: unique symbol = Symbol.for('proxystore-redis.lifetime.addKeys');

/** Internal: how a Store makes a future that belongs to a lifetime (a key in its tag, joined now; one round trip). */
export const kLifetimeFuture: unique symbol = Symbol.for('proxystore-redis.lifetime.future');
/** Internal: how a Store writes a new owned object as a member of a lifetime (`ownedProxy(value, { lifetime })`). */
export const kLifetimeOwnedPut: unique symbol = Symbol.for('proxystore-redis.lifetime.ownedPut');

/** The owner of a new owned member: its token, the holder that renews it, the lease length (ms). */
export interface NewOwner {
  token: string;
  holder: string;
  ttlMs: number;
}

/** The trailing options of `addKey` (ProxyStore's `store=` argument). */
export interface AddKeyOptions {
  /** The store the keys belong to. StaticLifetime needs it; the others check it. */
  store: Store;
}

/** `addKey`'s arguments: keys, optionally followed by {@link AddKeyOptions}. */
export type AddKeyArgs = string[] | [...keys: string[], options: AddKeyOptions];

/** Options of `close`. */
export interface CloseOptions {
  /** Close the store(s) of the lifetime once it is closed. Default false. */
  closeStores?: boolean;
}

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
  /** Associate existing keys with this lifetime; `addKey(...keys, { store })` names their store. */
  addKey(...keys: AddKeyArgs): Promise<void>;
  /** Associate the targets of proxies with this lifetime. */
  addProxy(...proxies: unknown[]): Promise<void>;
  /** End the lifetime and evict its objects (idempotent). */
  close(options?: CloseOptions): Promise<void>;
  /** Whether the lifetime has ended, as Redis sees it. */
  done(): Promise<boolean>;
  /** `await using lifetime = ...` closes the lifetime at the end of the block. */
  [Symbol.asyncDispose](): Promise<void>;
  /**
   * @internal Store `values` as new members, each with `rules` (a reads
   * budget, an own ttl), in one round trip, and return their keys.
   */
  [kLifetimePut](store: Store, values: PutValue[], rules?: ObjectRules): Promise<string[]>;
  /** @internal Add keys of `store` as members, in one round trip. */
  [kLifetimeAddKeys](store: Store, keys: string[]): Promise<void>;
  /** @internal A new future's key, a member of this lifetime with no value yet (listed in its `futures` set). */
  [kLifetimeFuture](store: Store): Promise<string>;
  /** @internal Store `bytes` as a new owned member with `owner`, in one round trip, and return its key. */
  [kLifetimeOwnedPut](store: Store, bytes: Buffer, owner: NewOwner): Promise<string>;
}

/** Whether a value implements {@link Lifetime}. */
export function isLifetime(value: unknown): value is Lifetime {
  return (
    typeof value === 'object' &&
    value !== null &&
    typeof (value as Partial<Lifetime>)[kLifetimePut] === 'function' &&
    typeof (value as Partial<Lifetime>)[kLifetimeAddKeys] === 'function' &&
    typeof (value as Partial<Lifetime>)[kLifetimeOwnedPut] === 'function'
  );
}
