/**
 * Refs: the small, JSON-safe form in which a proxy travels to another
 * process. A ref names the store, the namespace, the key and the target's
 * shape, and never carries credentials: the receiving process resolves it
 * through its own store of that name.
 *
 * Three ways to move a proxy: `toRef`/`fromRef`; `JSON.stringify(proxy)`
 * (a proxy's `toJSON` writes its ref) with `JSON.parse(text, proxyReviver)`;
 * and msgpackr (a proxy nested inside a stored object is stored as its ref and
 * comes back as a proxy).
 *
 * @module
 */
import { addExtension } from 'msgpackr';
import type { Future, FutureRef } from '../future/future.js';
import { InvalidRefError } from '../errors.js';
import { SHAPES, type Shape } from '../serialize.js';
import { ProxyLocker } from './locker.js';
import { makeProxy, ProxyRefCarrier, requireState, type Proxy, type ProxyKind } from './proxy.js';

/** The marker field that identifies a ref (its value is the ref format version). */
export const REF_MARKER = '__proxystore__';

/** A proxy in transit: plain, JSON-safe, without credentials. */
export interface ProxyRef {
  [REF_MARKER]: 1;
  /** What kind of handle this is. */
  kind: ProxyKind;
  /** Name of the store that resolves it (looked up in the receiving process). */
  store: string;
  /** Namespace of that store; a store of another namespace refuses the ref. */
  namespace: string;
  /** The store key. */
  key: string;
  /** The target's shape, so `Array.isArray` and `instanceof` work before resolution. */
  shape: Shape;
  /** Ephemeral: resolving consumes the object (one read of it). */
  evict?: true;
  /**
   * The object's budget of consuming reads when it was put with `reads: n`
   * (n >= 2; always with `evict`): what the ref's resolves share. Absent for
   * `evict: true` alone (`reads: 1`), whose refs look as before.
   */
  reads?: number;
  /** Ownership token of owned and borrowed handles. */
  token?: string;
  /** A borrow's grant number (fencing, see docs/durability.md); refs of older versions have none. */
  grant?: number;
  /** Written by a ProxyLocker: revived as a locker, not a bare proxy. */
  locked?: true;
  /** The proxy of a future: resolving waits for the result. */
  future?: true;
  /** A future proxy's wait timeout, in seconds (absent: no limit). */
  timeout?: number;
}

/** How futures travel (set by the future module, which sits above this one). */
interface FutureRefs {
  is(value: unknown): boolean;
  toRef(future: unknown): FutureRef;
  fromRef(ref: unknown): unknown;
}
let futureRefs: FutureRefs | undefined;

/** @internal */
export function setFutureRefs(hooks: FutureRefs): void {
  futureRefs = hooks;
}

/** Hooks run when an ownership handle moves through a ref (set by the ownership module). */
export interface HandleMoves {
  /** Called by `toRef` on a handle; must invalidate the sender's handle. */
  onSend(proxy: object): void;
  /** Called by `fromRef` on a revived handle (takes over renewal). */
  onReceive(proxy: object): void;
}
let handleMoves: HandleMoves | undefined;

/** @internal */
export function setHandleMoves(hooks: HandleMoves): void {
  handleMoves = hooks;
}

/**
 * The ref of a proxy. For owned and borrowed handles this *moves* the handle:
 * the sender's handle becomes invalid and the receiver takes it over.
 *
 * @example
 * ```ts
 * const ref = toRef(await store.proxy(bigArray));
 * worker.postMessage(ref); // ~200 bytes, whatever the array's size
 * ```
 */
export function toRef<T>(future: Future<T>): FutureRef;
export function toRef(proxy: unknown): ProxyRef;
export function toRef(proxy: unknown): ProxyRef | FutureRef {
  if (futureRefs?.is(proxy)) return futureRefs.toRef(proxy);
  const state = requireState(proxy, 'toRef');
  const ref: ProxyRef = {
    [REF_MARKER]: 1,
    kind: state.kind,
    store: state.storeName,
    namespace: state.namespace,
    key: state.key,
    shape: state.shape,
  };
  if (state.evict) ref.evict = true;
  if (state.evict && state.reads !== undefined) ref.reads = state.reads;
  if (state.token !== undefined) ref.token = state.token;
  if (state.future !== undefined) {
    ref.future = true;
    if (state.future.timeout !== undefined) ref.timeout = state.future.timeout;
  }
  if (state.grant !== undefined) ref.grant = state.grant;
  if (state.kind !== 'proxy') {
    if (!handleMoves) throw new InvalidRefError(`cannot move a ${state.kind} handle: ownership is not loaded`);
    handleMoves.onSend(proxy as object);
  }
  return ref;
}

const KINDS: ReadonlySet<string> = new Set(['proxy', 'owned', 'ref', 'refmut']);

/** Check that a value is a well-formed ref; throws {@link InvalidRefError} naming what is wrong. */
export function validateRef(value: unknown): ProxyRef {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new InvalidRefError(`not a proxystore ref: expected an object, got ${value === null ? 'null' : Array.isArray(value) ? 'an array' : typeof value}`);
  }
  const r = value as Record<string, unknown>;
  if (r.kind === 'future') {
    throw new InvalidRefError(`the ref of future ${String(r.key)} is a future's, not a proxy's: revive it with Future.fromRef (or resolve future.proxy()'s ref)`);
  }
  const problems: string[] = [];
  if (r[REF_MARKER] !== 1) problems.push(`\`${REF_MARKER}\` must be 1`);
  if (typeof r.store !== 'string' || r.store.length === 0) problems.push('`store` must be a non-empty string');
  if (typeof r.namespace !== 'string' || r.namespace.length === 0) problems.push('`namespace` must be a non-empty string');
  if (typeof r.key !== 'string' || r.key.length === 0) problems.push('`key` must be a non-empty string');
  if (typeof r.shape !== 'string' || !SHAPES.has(r.shape)) problems.push('`shape` must be a known shape');
  if (r.kind !== undefined && (typeof r.kind !== 'string' || !KINDS.has(r.kind))) {
    problems.push('`kind` must be one of proxy, owned, ref, refmut');
  }
  if (r.evict !== undefined && r.evict !== true && r.evict !== false) problems.push('`evict` must be a boolean');
  if (r.reads !== undefined && !(typeof r.reads === 'number' && Number.isInteger(r.reads) && r.reads >= 1 && r.reads <= 1_000_000_000)) {
    problems.push('`reads` must be an integer from 1 to 1000000000');
  }
  if (r.reads !== undefined && r.evict !== true) problems.push('`reads` comes with `evict: true` (a reads budget is consumed)');
  if (r.locked !== undefined && r.locked !== true && r.locked !== false) problems.push('`locked` must be a boolean');
  if (r.token !== undefined && (typeof r.token !== 'string' || r.token.length === 0)) problems.push('`token` must be a non-empty string');
  if (r.future !== undefined && r.future !== true) problems.push('`future` must be true when present');
  if (r.timeout !== undefined && !(typeof r.timeout === 'number' && r.timeout >= 0 && r.timeout <= 2_147_483)) {
    problems.push('`timeout` must be a number of seconds from 0 to 2147483');
  }
  if (r.timeout !== undefined && r.future !== true) problems.push('`timeout` comes with `future: true`');
  if (r.future === true && r.kind !== undefined && r.kind !== 'proxy') problems.push('a future\'s proxy is a plain proxy (kind "proxy")');
  if (r.grant !== undefined && !(typeof r.grant === 'number' && Number.isInteger(r.grant) && r.grant >= 1 && r.grant <= 999_999_999_999_999)) {
    problems.push('`grant` must be a positive integer');
  }
  if (r.kind !== undefined && r.kind !== 'proxy' && typeof r.token !== 'string') problems.push(`a ${String(r.kind)} ref needs a \`token\``);
  if (problems.length > 0) {
    const where = typeof r.key === 'string' ? ` (key ${r.key})` : '';
    throw new InvalidRefError(`malformed proxystore ref${where}: ${problems.join('; ')}`);
  }
  return value as ProxyRef;
}

/**
 * A proxy from a ref. Nothing is fetched until `resolve`; the store is
 * looked up by name in this process then.
 *
 * @example
 * ```ts
 * const p = fromRef<number[]>(ref);
 * Array.isArray(p); // true, before resolution
 * const arr = await resolve(p);
 * ```
 */
export function fromRef<T>(ref: ProxyRef | unknown): Proxy<T> {
  const r = validateRef(ref);
  const proxy = makeProxy<T>({
    kind: r.kind ?? 'proxy',
    storeName: r.store,
    namespace: r.namespace,
    key: r.key,
    shape: r.shape,
    evict: r.evict === true,
    ...(r.reads !== undefined ? { reads: r.reads } : {}),
    ...(r.token !== undefined ? { token: r.token } : {}),
    ...(r.future === true ? { future: r.timeout !== undefined ? { timeout: r.timeout } : {} } : {}),
    ...(r.grant !== undefined ? { grant: r.grant } : {}),
    toRef,
  });
  if (r.kind !== undefined && r.kind !== 'proxy') {
    if (!handleMoves) throw new InvalidRefError(`cannot receive a ${r.kind} handle: ownership is not loaded`);
    handleMoves.onReceive(proxy as object);
  }
  return proxy;
}

/**
 * A `JSON.parse` reviver that turns refs back into proxies.
 *
 * @example
 * ```ts
 * const text = JSON.stringify({ input: proxy }); // the proxy becomes its ref
 * const event = JSON.parse(text, proxyReviver);   // and comes back a proxy
 * ```
 */
export function proxyReviver(_key: string, value: unknown): unknown {
  if (typeof value === 'object' && value !== null && REF_MARKER in value) {
    if ((value as { kind?: unknown }).kind === 'future' && futureRefs) return futureRefs.fromRef(value);
    const proxy = fromRef(value);
    return (value as Partial<ProxyRef>).locked === true ? new ProxyLocker(proxy) : proxy;
  }
  return value;
}

/** msgpackr extension type used for proxies nested inside stored objects ('P'). */
export const PROXY_EXTENSION_TYPE = 0x50;

addExtension({
  Class: ProxyRefCarrier,
  type: PROXY_EXTENSION_TYPE,
  write: (proxy: unknown) => toRef(proxy),
  read: (ref: unknown) => fromRef(ref),
});
