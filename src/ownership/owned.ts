/**
 * `store.ownedProxy(value)`: a new object with one owner, created together
 * with its ownership record in one script, so it never exists unowned.
 *
 * @module
 */
import { dropStaged, scriptValue } from '../chunks/put.js';
import { InvalidOptionsError } from '../errors.js';
import { randomId } from '../keys.js';
import { isLifetime, kLifetimeOwnedPut, type Lifetime } from '../lifetimes/lifetime.js';
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
  /**
   * A lifetime that bounds the owner: the object is created as its member,
   * and at its end the owner's handle becomes invalid and the object is
   * evicted (at once when nothing borrows it, else when its last borrow
   * ends). See docs/lifetimes.md, "Owned objects in lifetimes".
   */
  lifetime?: Lifetime;
}

/** What `ownedProxy(value)` returns for a value of type T. */
export type OwnedProxyOf<T> = T extends null | undefined | boolean ? T : OwnedProxy<T>;

/**
 * Store `value` with a new owner. `value` is proxiable (the Store checked).
 * @internal Called by `Store.ownedProxy`.
 */
export async function createOwnedProxy<T>(store: Store, value: T, options: OwnedProxyOptions): Promise<OwnedProxy<T>> {
  const extra = options as { evict?: unknown; reads?: unknown; ttl?: unknown };
  if (extra.evict || extra.reads !== undefined || extra.ttl !== undefined) {
    throw new InvalidOptionsError(
      'ownedProxy takes none of `evict`, `reads` and `ttl`: ownership does not combine with ephemeral budgets or ttls ' +
        '(an owned object ends with its owner, through drop(), or with its `lifetime`)',
    );
  }
  const lifetime = options.lifetime;
  if (lifetime !== undefined && !isLifetime(lifetime)) {
    throw new InvalidOptionsError('`lifetime` must be a ContextLifetime, LeaseLifetime or StaticLifetime');
  }
  const token = randomId();
  const renewal = renewalOf(store);
  // A large Buffer or typed array without a lifetime: chunked from its own memory (no copy of the payload).
  const encoded = lifetime ? store.encode(value, options.serializer) : store.encodeParts(value, options.serializer);
  const bytes = Buffer.isBuffer(encoded) ? encoded : undefined;
  if (bytes && bytes.length <= store.chunkSize) await store.connector.checkFits([bytes], 'ownedProxy');
  const owner = { token, holder: renewal.holder, ttlMs: renewal.ttlMs };
  const key = lifetime
    ? await store.measure('ownedProxy', () => lifetime[kLifetimeOwnedPut](store, encoded as Buffer, owner))
    : await (async () => {
        const newKey = store.connector.newKey();
        await store.measure('ownedProxy', async () => {
          // Over chunkSize: chunks staged first, renamed in by the script (src/chunks/).
          const v = await scriptValue(store.connector, newKey, encoded, store.chunkSize);
          try {
            await store.connector.scripts.run('ownedCreate', { ...objectKeys(store, newKey), stage: v.stage }, { key: newKey, ...owner, bytes: v.value }, { key: newKey });
          } catch (err) {
            if (v.staged) await dropStaged(store.connector, [v.staged]);
            throw err;
          }
        });
        return newKey;
      })();
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
