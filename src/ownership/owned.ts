/**
 * `store.ownedProxy(value)`: a new object with one owner, created together
 * with its ownership record in one script, so it never exists unowned.
 *
 * @module
 */
import { InvalidOptionsError } from '../errors.js';
import { randomId } from '../keys.js';
import { shapeOf, type Deserializer, type Serializer } from '../serialize.js';
import type { Store } from '../store.js';
import { makeHandle, objectKeys, type OwnedProxy } from './handle.js';
import { adopt } from './lifecycle.js';
import { renewalOf } from './renewal.js';
import './moves.js';

/** Options of `store.ownedProxy`. */
export interface OwnedProxyOptions {
  /** Return a handle that is already resolved (default: the store's `populateTarget`). */
  populateTarget?: boolean;
  /** Return `null`, `undefined` and booleans as they are instead of throwing. */
  skipNonproxiable?: boolean;
  serializer?: Serializer;
  /** Deserializer used when this handle (and its borrows) resolve in this process. */
  deserializer?: Deserializer;
}

/** What `ownedProxy(value)` returns for a value of type T. */
export type OwnedProxyOf<T> = T extends null | undefined | boolean ? T : OwnedProxy<T>;

/**
 * Store `value` with a new owner. `value` is proxiable (the Store checked).
 * @internal Called by `Store.ownedProxy`.
 */
export async function createOwnedProxy<T>(store: Store, value: T, options: OwnedProxyOptions): Promise<OwnedProxy<T>> {
  const extra = options as { evict?: unknown; lifetime?: unknown; reads?: unknown; ttl?: unknown };
  if (extra.evict || extra.lifetime !== undefined || extra.reads !== undefined || extra.ttl !== undefined) {
    throw new InvalidOptionsError(
      'ownedProxy takes none of `evict`, `reads`, `ttl` and `lifetime`: ownership does not combine with ephemeral budgets, ttls ' +
        'or lifetimes yet (in ProxyStore they are mutually exclusive; an owned object ends with its owner, through drop())',
    );
  }
  const key = store.connector.newKey();
  const token = randomId();
  const renewal = renewalOf(store);
  const bytes = store.encode(value, options.serializer);
  await store.connector.checkFits([bytes], 'ownedProxy');
  await store.measure('ownedProxy', () =>
    store.connector.scripts.run(
      'ownedCreate',
      objectKeys(store, key),
      { key, bytes, token, holder: renewal.holder, ttlMs: renewal.ttlMs },
      { key },
    ),
  );
  const populate = options.populateTarget ?? store.populateTarget;
  const proxy = makeHandle<T>(store, {
    kind: 'owned',
    key,
    shape: shapeOf(value),
    token,
    deserializer: options.deserializer,
    target: populate ? { value } : undefined,
  });
  adopt(renewal, proxy);
  return proxy as OwnedProxy<T>;
}
