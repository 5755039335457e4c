/**
 * What an owner does besides lending: `drop` (end the object), `clone` (a
 * server-side copy with a new owner), `intoOwned` (give a plain proxy's
 * object an owner) and `update` (write the local target back, by the
 * unborrowed owner or the mutable borrow). One script call each.
 *
 * @module
 */
import { dropStaged, scriptValue } from '../chunks/put.js';
import { isDedupeKey } from '../dedupe/key.js';
import { InvalidOptionsError, ReferenceNotOwnedError } from '../errors.js';
import { checkOptions } from '../options.js';
import { randomId, tagOf } from '../keys.js';
import { requireState, type Proxy, type ProxyState } from '../proxy/proxy.js';
import type { Serializer } from '../serialize.js';
import type { Store } from '../store.js';
import { kindName, makeHandle, notOwned, objectKeys, requireHandle, storeOf, type OwnedProxy, type RefMutProxy } from './handle.js';
import { adopt, retire, runFor } from './lifecycle.js';
import { renewalOf } from './renewal.js';

/**
 * End an owned object: evict it and invalidate the handle (ProxyStore's
 * `del owned`). One round trip.
 *
 * @throws {@link BorrowedError} while the object is borrowed (the handle stays valid).
 * @throws {@link ReferenceNotOwnedError} when given anything but an `OwnedProxy`.
 * @throws {@link ReferenceInvalidError} when the handle was moved or dropped.
 * @example
 * ```ts
 * const owned = await store.ownedProxy({ big: 'thing' });
 * await drop(owned);
 * ```
 */
export async function drop<T>(owned: OwnedProxy<T>): Promise<void> {
  const state = requireHandle(owned, 'drop', ['owned'], notOwned('drop', 'dropped'));
  const store = storeOf(state);
  await runFor(store, state, 'drop', objectKeys(store, state.key), { key: state.key, owner: state.token, call: randomId() });
  retire(store, state, 'the OwnedProxy was dropped');
}

/** A deep copy of a resolved target, as another process would resolve it; undefined when it cannot be copied. */
function copyOfTarget(store: Store, state: ProxyState): { value: unknown } | undefined {
  try {
    return { value: store.decode(store.encode(state.target, undefined), state.key, undefined) };
  } catch {
    return undefined;
  }
}

/**
 * Copy an owned object into a new object with its own owner. The bytes are
 * copied on the server (no bytes through the client); the new key shares the
 * source's hash tag (Redis Cluster needs that for COPY). When the source is
 * resolved here, the clone gets a deep copy of its target. One round trip.
 *
 * Unlike ProxyStore, cloning a mutably borrowed object fails: the copy would
 * read a value that the mutable borrow may be changing.
 *
 * @throws {@link ReferenceNotOwnedError} when given anything but an `OwnedProxy`.
 * @throws {@link MutableBorrowError} while the object is mutably borrowed.
 * @throws {@link ReferenceInvalidError} when the handle was moved or dropped.
 * @example
 * ```ts
 * const copy = await clone(owned);
 * copy.push(4); // the original is untouched
 * await update(copy);
 * ```
 */
export async function clone<T>(owned: OwnedProxy<T>): Promise<OwnedProxy<T>> {
  const state = requireHandle(owned, 'clone', ['owned'], notOwned('clone', 'cloned'));
  const store = storeOf(state);
  const renewal = renewalOf(store);
  const key = store.connector.newKey(tagOf(state.key));
  const token = randomId();
  const source = objectKeys(store, state.key);
  const copy = objectKeys(store, key);
  await runFor(
    store,
    state,
    'clone',
    { ...source, newData: copy.data, newRecord: copy.record, newLeases: copy.leases },
    { key: state.key, owner: state.token, token, holder: renewal.holder, ttlMs: renewal.ttlMs },
  );
  const proxy = makeHandle<T>(store, {
    kind: 'owned',
    key,
    shape: state.shape,
    token,
    deserializer: state.deserializer,
    target: state.resolved ? copyOfTarget(store, state) : undefined,
  });
  adopt(renewal, proxy);
  return proxy as OwnedProxy<T>;
}

/** Options of `intoOwned`. */
export interface IntoOwnedOptions {
  /** When the proxy is resolved, give the owner the same target (default true). */
  populateTarget?: boolean;
}

/**
 * Make a plain proxy's object owned: returns its one `OwnedProxy` (ProxyStore's
 * `into_owned`). The object's keys get the owner's lease from now on, and the
 * proxy's `evict` flag is cleared (as ProxyStore does). One round trip.
 *
 * An object with an expiry (a `ttl`, a lease lifetime's end) keeps it as the
 * owner's bound; a member of a lifetime becomes an owned member of it: the
 * lifetime's end ends the owner (docs/lifetimes.md, "Owned objects in lifetimes").
 *
 * @throws {@link AlreadyOwnedError} when the object already has an owner.
 * @throws {@link LifetimeEndedError} when the object's lifetime is closing or ended.
 * @throws {@link InvalidOptionsError} when the proxy is already an ownership handle.
 * @throws {@link ProxyResolveMissingKeyError} when the object is missing.
 * @example
 * ```ts
 * const p = fromRef<number[]>(resultRef); // a worker's result
 * const owned = await intoOwned(p);
 * ```
 */
export async function intoOwned<T>(proxy: Proxy<T>, options: IntoOwnedOptions = {}): Promise<OwnedProxy<T>> {
  checkOptions('intoOwned', options, ['populateTarget']);
  const state = requireState(proxy, 'intoOwned');
  if (state.kind !== 'proxy') {
    throw new InvalidOptionsError(
      `Only a plain proxy can be converted into an owned proxy: key ${state.key} is held here by a ${kindName(state.kind)} already`,
      { key: state.key },
    );
  }
  if (isDedupeKey(state.key)) {
    throw new InvalidOptionsError(
      `key ${state.key} is a deduped object (dedupe: true), shared by every put of equal bytes: it cannot be owned; own a copy with store.ownedProxy(value)`,
      { key: state.key },
    );
  }
  const store = storeOf(state);
  const renewal = renewalOf(store);
  const token = randomId();
  await store.measure('intoOwned', () =>
    store.connector.scripts.run(
      'intoOwned',
      // An own member of a lifetime is in that lifetime's members set, in the same slot: the
      // script makes it an owned member of that lifetime (docs/lifetimes.md, "Owned objects in lifetimes").
      {
        ...objectKeys(store, state.key),
        members: store.connector.keys.lifetime('members', tagOf(state.key)),
        meta: store.connector.keys.lifetime('lt', tagOf(state.key)),
        ends: store.connector.keys.lifetime('ends', tagOf(state.key)),
      },
      { key: state.key, token, holder: renewal.holder, ttlMs: renewal.ttlMs },
      { key: state.key },
    ),
  );
  state.evict = false;
  const owned = makeHandle<T>(store, {
    kind: 'owned',
    key: state.key,
    shape: state.shape,
    token,
    deserializer: state.deserializer,
    target: (options.populateTarget ?? true) && state.resolved ? { value: state.target } : undefined,
  });
  adopt(renewal, owned);
  return owned as OwnedProxy<T>;
}

/** Options of `update`. */
export interface UpdateOptions {
  /** Serializer for this write (default: the store's). */
  serializer?: Serializer;
}

/**
 * Write a handle's local target back to the store, atomically with the rule
 * check: an `OwnedProxy` that is not borrowed, or the `RefMutProxy`. An
 * unresolved handle has nothing to write, so only the rule is checked (as
 * ProxyStore). One round trip. It bumps the object's version: no process
 * serves the old bytes from its cache once Redis's invalidation reached it
 * (this one: at once). Other processes' resolved handles keep the target
 * they resolved.
 *
 * @throws {@link ReferenceNotOwnedError} for a `RefProxy` (or a plain proxy).
 * @throws {@link MutableBorrowError} for an owner that is borrowed.
 * @throws {@link ReferenceInvalidError} when the handle was moved, released or dropped.
 * @example
 * ```ts
 * const writer = await mutBorrow(owned);
 * writer.push(4);
 * await update(writer);
 * ```
 */
export async function update<T>(handle: OwnedProxy<T> | RefMutProxy<T>, options: UpdateOptions = {}): Promise<void> {
  checkOptions('update', options, ['serializer']);
  const state = requireHandle(
    handle,
    'update',
    ['owned', 'refmut'],
    (s) =>
      new ReferenceNotOwnedError(
        s.kind === 'ref'
          ? `a RefProxy of key ${s.key} is an immutable borrow: only an OwnedProxy or a RefMutProxy can update (use mutBorrow())`
          : `update needs an OwnedProxy or a RefMutProxy, got a plain Proxy of key ${s.key} (use intoOwned())`,
        { key: s.key },
      ),
  );
  const store = storeOf(state);
  // Unresolved: nothing to write, but the rule is still checked (ProxyStore raises first too).
  // (A large Buffer or typed array target is chunked from its own memory.)
  const bytes = state.resolved ? store.encodeParts(state.target, options.serializer) : Buffer.alloc(0);
  if (Buffer.isBuffer(bytes) && bytes.length <= store.chunkSize) await store.connector.checkFits([bytes], 'update');
  // Over chunkSize: the new chunks are staged under a new write id and swapped in whole by the script (src/chunks/).
  const v = await scriptValue(store.connector, state.key, bytes, store.chunkSize);
  let version: number;
  try {
    version = await runFor(store, state, 'update', { ...objectKeys(store, state.key), stage: v.stage }, {
      key: state.key,
      token: state.token,
      // Its own token: a resend of this call (lost reply) finds it done and writes nothing again.
      call: randomId(),
      write: state.resolved ? '1' : '0',
      bytes: v.value,
      // A mutable borrow's grant number: a grant this Redis never made cannot write (lua/includes/fence.lua).
      grant: state.kind === 'refmut' ? (state.grant ?? 0) : 0,
    });
  } catch (err) {
    if (v.staged) await dropStaged(store.connector, [v.staged]);
    throw err;
  }
  // Read-your-writes: this process never serves an older version from its cache.
  store.objectCache?.sawVersion(state.key, version);
}

