/**
 * Ownership handles: the three kinds of proxy that carry an ownership token
 * (`OwnedProxy`, `RefProxy`, `RefMutProxy`), and what every ownership
 * operation needs to know about one: its store, its Redis keys, and how it
 * ends.
 *
 * A handle is an ordinary proxy (made by `makeProxy`) whose `ProxyState` has
 * `kind`, `token` and `valid`; nothing is added to the proxy's own property
 * namespace, which stays the target's.
 *
 * @module
 */
import { ProxyStoreFactoryError, ReferenceNotOwnedError } from '../errors.js';
import { checkValid, makeProxy, proxyState, requireState, sourceOf, type Proxy, type ProxyKind, type ProxyState } from '../proxy/proxy.js';
import { toRef } from '../proxy/refs.js';
import type { Deserializer, Shape } from '../serialize.js';
import type { Store } from '../store.js';

declare const handleKind: unique symbol;

/**
 * The one owner of an object in a store (ProxyStore's `OwnedProxy[T]`). Use
 * it as a `T`; lend it with `borrow`/`mutBorrow`; end it with `drop` (or
 * `await using`, which drops it). Moving it to another process (`toRef`)
 * moves ownership.
 */
export type OwnedProxy<T> = Proxy<T> & { readonly [handleKind]: 'owned' } & AsyncDisposable;
/** A shared borrow of an owned object (ProxyStore's `RefProxy[T]`). End it with `release` or `await using`. */
export type RefProxy<T> = Proxy<T> & { readonly [handleKind]: 'ref' } & AsyncDisposable;
/** The mutable borrow of an owned object (ProxyStore's `RefMutProxy[T]`). `update` writes through it. */
export type RefMutProxy<T> = Proxy<T> & { readonly [handleKind]: 'refmut' } & AsyncDisposable;

/** Kinds of ownership handle. */
export type HandleKind = Exclude<ProxyKind, 'proxy'>;

/** A handle's state: it always has a token. */
export type HandleState = ProxyState & { token: string };

const KIND_NAMES: Record<ProxyKind, string> = {
  proxy: 'plain Proxy',
  owned: 'OwnedProxy',
  ref: 'RefProxy',
  refmut: 'RefMutProxy',
};

/** The class-like name of a kind, for messages. */
export function kindName(kind: ProxyKind): string {
  return KIND_NAMES[kind];
}

/**
 * Whether a value is an `OwnedProxy` (valid or not). Never resolves it.
 *
 * @example
 * ```ts
 * isOwnedProxy(await store.ownedProxy([1])); // true
 * ```
 */
export function isOwnedProxy<T = unknown>(value: T | unknown): value is OwnedProxy<T> {
  return proxyState(value)?.kind === 'owned';
}

/**
 * Whether a value is a `RefProxy` (a shared borrow). Never resolves it.
 *
 * @example
 * ```ts
 * const p = fromRef(ref);
 * if (isRefProxy(p)) await release(p);
 * ```
 */
export function isRefProxy<T = unknown>(value: T | unknown): value is RefProxy<T> {
  return proxyState(value)?.kind === 'ref';
}

/**
 * Whether a value is a `RefMutProxy` (the mutable borrow). Never resolves it.
 *
 * @example
 * ```ts
 * if (isRefMutProxy(p)) await update(p);
 * ```
 */
export function isRefMutProxy<T = unknown>(value: T | unknown): value is RefMutProxy<T> {
  return proxyState(value)?.kind === 'refmut';
}

/**
 * Whether a handle can still be used: false once it was moved away (`toRef`),
 * released, dropped, or its lease ended. Plain proxies are always valid.
 *
 * @example
 * ```ts
 * toRef(owned);
 * isValid(owned); // false: ownership moved with the ref
 * ```
 */
export function isValid(value: unknown): boolean {
  return requireState(value, 'isValid').valid;
}

/** The state of a handle of one of `kinds`, valid; `wrongKind` builds the error otherwise. */
export function requireHandle(
  value: unknown,
  operation: string,
  kinds: readonly ProxyKind[],
  wrongKind: (state: ProxyState) => Error,
): HandleState {
  const state = requireState(value, operation);
  if (!kinds.includes(state.kind)) throw wrongKind(state);
  checkValid(state, operation);
  return state as HandleState;
}

/** The error for an operation that needs an `OwnedProxy`. */
export function notOwned(operation: string, what: string) {
  return (state: ProxyState): ReferenceNotOwnedError =>
    new ReferenceNotOwnedError(
      `${operation} needs an OwnedProxy, but key ${state.key} is held here by a ${kindName(state.kind)}: only owned references can be ${what}`,
      { key: state.key },
    );
}

/** The store that serves a handle in this process. */
export function storeOf(state: ProxyState): Store {
  const source = sourceOf(state) as Partial<Store>;
  if (typeof source.onClose !== 'function' || source.connector === undefined) {
    throw new ProxyStoreFactoryError(`the store serving key ${state.key} cannot hold ownership handles`, { key: state.key });
  }
  return source as Store;
}

/** The Redis keys of an owned object; they share its hash tag. */
export function objectKeys(store: Store, key: string): { data: string; record: string; leases: string; done: string } {
  const keys = store.connector.keys;
  return {
    data: keys.object('d', key),
    record: keys.object('own', key),
    leases: keys.object('lease', key),
    done: keys.object('done', key),
  };
}

/** Lease length of a store's handles, in milliseconds. */
export function leaseMs(store: Store): number {
  return Math.max(1, Math.round(store.leaseTtl * 1000));
}

/** Options to {@link makeHandle}. */
export interface HandleOptions {
  kind: HandleKind;
  key: string;
  shape: Shape;
  token: string;
  /** A borrow's grant number (fencing), when it is one. */
  grant?: number;
  deserializer: Deserializer | undefined;
  /** Present when the target is already known here. */
  target?: { value: unknown } | undefined;
}

/** A new handle served by `store`. */
export function makeHandle<T>(store: Store, options: HandleOptions): Proxy<T> {
  return makeProxy<T>({
    kind: options.kind,
    storeName: store.name,
    namespace: store.namespace,
    key: options.key,
    shape: options.shape,
    source: store,
    token: options.token,
    ...(options.grant !== undefined ? { grant: options.grant } : {}),
    ...(options.deserializer ? { deserializer: options.deserializer } : {}),
    ...(options.target ? { target: options.target } : {}),
    toRef,
  });
}

/** Why a handle became invalid, when it is not simply gone: its lifetime ended it, or Redis lost its data. */
export type InvalidCause = 'lifetime' | 'dataLost';

/**
 * Mark a handle unusable. Its local target is let go too: a released borrow
 * of a 50 MB array should not keep the array alive. `cause`: its object's
 * lifetime ended it (the handle then throws LifetimeEndedError), or Redis lost
 * its data (RedisDataLostError).
 */
export function invalidate(state: ProxyState, reason: string, cause?: InvalidCause): void {
  state.valid = false;
  state.invalidReason = reason;
  if (cause === 'lifetime') state.endedByLifetime = true;
  if (cause === 'dataLost') state.dataLost = true;
  state.target = undefined;
  state.resolved = false;
}
