/**
 * Borrowing: `borrow` and `mutBorrow` lend an `OwnedProxy`, `release` ends a
 * borrow. Each is one script call that checks and applies the rules in
 * Redis, so they hold across processes: any number of shared borrows or one
 * mutable borrow. A borrow's token travels in its ref, so whichever process
 * holds the borrow can use, update (mutable) and release it.
 *
 * @module
 */
import { DurabilityError, InvalidOptionsError } from '../errors.js';
import { checkOptions } from '../options.js';
import { randomId } from '../keys.js';
import type { Proxy } from '../proxy/proxy.js';
import {
  kindName,
  makeHandle,
  notOwned,
  objectKeys,
  requireHandle,
  storeOf,
  type OwnedProxy,
  type RefMutProxy,
  type RefProxy,
} from './handle.js';
import { adopt, retire, runFor } from './lifecycle.js';
import { renewalOf } from './renewal.js';

/** Options of `borrow` and `mutBorrow`. */
export interface BorrowOptions {
  /**
   * When the owner is resolved here, give the borrow the same target so it
   * is resolved too (default true, as ProxyStore).
   */
  populateTarget?: boolean;
}

async function lend(owned: unknown, kind: 'ref' | 'refmut', options: BorrowOptions): Promise<Proxy<unknown>> {
  const operation = kind === 'ref' ? 'borrow' : 'mutBorrow';
  checkOptions(operation, options, ['populateTarget']);
  const state = requireHandle(owned, operation, ['owned'], notOwned(operation, 'borrowed'));
  const store = storeOf(state);
  const renewal = renewalOf(store);
  const token = randomId();
  const keys = objectKeys(store, state.key);
  let grant: number;
  try {
    grant = await runFor(store, state, operation, keys, { key: state.key, owner: state.token, token, holder: renewal.holder, ttlMs: renewal.ttlMs });
  } catch (err) {
    // Granted on the master but not acknowledged by enough replicas: nobody
    // will hold this grant, so end it rather than leave the object borrowed
    // until its lease runs out (best effort; a new borrow gets a new token).
    if (err instanceof DurabilityError) {
      void store.connector.scripts.run('release', keys, { key: state.key, token, call: randomId(), grant: 0 }, { key: state.key }).catch(() => undefined);
    }
    throw err;
  }
  const populate = (options.populateTarget ?? true) && state.resolved;
  const proxy = makeHandle(store, {
    kind,
    key: state.key,
    shape: state.shape,
    token,
    grant,
    deserializer: state.deserializer,
    target: populate ? { value: state.target } : undefined,
  });
  adopt(renewal, proxy);
  return proxy;
}

/**
 * Borrow an owned object as a shared, read-only reference (ProxyStore's
 * `borrow`). The borrow can be sent to another process (`toRef`), which then
 * holds it. One round trip.
 *
 * @throws {@link ReferenceNotOwnedError} when `owned` is not an `OwnedProxy`.
 * @throws {@link MutableBorrowError} when the object is mutably borrowed.
 * @throws {@link ReferenceInvalidError} when `owned` was moved or dropped.
 * @example
 * ```ts
 * const owned = await store.ownedProxy([1, 2, 3]);
 * const shared = await borrow(owned);
 * worker.postMessage(toRef(shared)); // the worker reads, then releases it
 * ```
 */
export async function borrow<T>(owned: OwnedProxy<T>, options: BorrowOptions = {}): Promise<RefProxy<T>> {
  return (await lend(owned, 'ref', options)) as RefProxy<T>;
}

/**
 * Borrow an owned object mutably (ProxyStore's `mut_borrow`): the one
 * borrow that may `update` it, while no other borrow exists. One round trip.
 *
 * @throws {@link ReferenceNotOwnedError} when `owned` is not an `OwnedProxy`.
 * @throws {@link MutableBorrowError} when the object is borrowed at all.
 * @throws {@link ReferenceInvalidError} when `owned` was moved or dropped.
 * @example
 * ```ts
 * const writer = await mutBorrow(owned);
 * writer.push(4);
 * await update(writer);
 * await release(writer);
 * ```
 */
export async function mutBorrow<T>(owned: OwnedProxy<T>, options: BorrowOptions = {}): Promise<RefMutProxy<T>> {
  return (await lend(owned, 'refmut', options)) as RefMutProxy<T>;
}

/**
 * End a borrow, in whichever process holds it; the handle becomes invalid.
 * One round trip.
 *
 * @throws {@link ReferenceInvalidError} when it was already released, moved
 *   away, or its lease ended.
 * @throws {@link InvalidOptionsError} when given an owner or a plain proxy.
 * @example
 * ```ts
 * const shared = fromRef<number[]>(ref); // in a worker
 * const sum = (await resolve(shared)).reduce((a, b) => a + b, 0);
 * if (isRefProxy(shared)) await release(shared);
 * ```
 */
export async function release<T>(handle: RefProxy<T> | RefMutProxy<T>): Promise<void> {
  const state = requireHandle(
    handle,
    'release',
    ['ref', 'refmut'],
    (s) =>
      new InvalidOptionsError(
        `release takes a RefProxy or RefMutProxy, got a ${kindName(s.kind)} of key ${s.key}${s.kind === 'owned' ? ': use drop() to end an owner' : ''}`,
        { key: s.key },
      ),
  );
  const store = storeOf(state);
  // The same call token for every attempt of this handle's release (see ProxyState.releaseCall).
  state.releaseCall ??= randomId();
  await runFor(store, state, 'release', objectKeys(store, state.key), { key: state.key, token: state.token, call: state.releaseCall, grant: state.grant ?? 0 });
  retire(store, state, `the ${kindName(state.kind)} was released`);
}
