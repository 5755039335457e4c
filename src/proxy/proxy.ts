/**
 * Transparent proxies: an ES `Proxy` per stored object that forwards every
 * operation to its target once resolved, and refuses (with
 * {@link ProxyNotResolvedError}) to be touched before.
 *
 * Peeking never resolves: `then` (so a proxy can be returned from an async
 * function), `util.inspect`, `Symbol.toStringTag`, `toJSON` (a proxy
 * serializes as its ref) and `instanceof`/`Array.isArray` (answered from the
 * shape recorded at put time).
 *
 * The proxy's own property namespace stays the target's: everything the
 * library does with a proxy goes through free functions (`resolve(p)`,
 * `getKey(p)`, ...) and per-proxy state kept in a WeakMap.
 *
 * @module
 */
import { inspect } from 'node:util';
import { LifetimeEndedError, ProxyNotResolvedError, ProxyStoreFactoryError, RedisDataLostError, ReferenceInvalidError } from '../errors.js';
import { randomId } from '../keys.js';
import { callerFrameAbove } from '../consumer.js';
import { prototypeOfShape, type Deserializer, type Shape } from '../serialize.js';

declare const proxyBrand: unique symbol;

/**
 * A proxy of a `T` kept in a store. Use it as a `T` once resolved
 * (`await resolve(p)`).
 *
 * Caveats of transparency: a proxy is always an object, so `typeof` of a
 * proxied string, number or bigint is `'object'` and `===` compares identity;
 * `ArrayBuffer.isView(p)` is false for a proxied typed array (use
 * `extract(p)` where a real value is needed).
 */
export type Proxy<T> = T & { readonly [proxyBrand]?: T };

/** The kinds of proxy handle. */
export type ProxyKind = 'proxy' | 'owned' | 'ref' | 'refmut';

/** Resolves a proxy's target; implemented by the Store. */
export interface TargetSource {
  readonly name: string;
  readonly namespace: string;
  readonly isClosed: boolean;
  /**
   * Fetch the target (consuming it when `evict`, as the consumer
   * `consumeToken`: the same token gets the same consumed value again).
   */
  resolveTarget(key: string, options: ResolveOptions): Promise<unknown>;
}

/** How {@link TargetSource.resolveTarget} fetches a target. */
export interface ResolveOptions {
  evict: boolean;
  deserializer?: Deserializer;
  /** The consuming proxy's token: made once per proxy object, never sent in its ref, so resolving the same proxy again after an unclear failure gets the consumed value back. */
  consumeToken?: string;
  /** A future's proxy: wait for the result first (`timeout` in seconds; none: no limit). */
  future?: { timeout?: number };
  /** A consuming read: the consumer's stack frame for the tombstone, taken at the public entry point (`resolve`); when absent, the store takes it itself. */
  consumerFrame?: string | undefined;
}

/** Everything the library knows about one proxy. */
export interface ProxyState {
  kind: ProxyKind;
  storeName: string;
  namespace: string;
  key: string;
  shape: Shape;
  /** Resolving consumes (an ephemeral proxy: evict, or reads). */
  evict: boolean;
  /** The object's budget of consuming reads, when it has one (2 or more); carried in the ref. */
  reads?: number;
  /** The store that made or revived the proxy, if known in this process. */
  source: TargetSource | undefined;
  deserializer: Deserializer | undefined;
  resolved: boolean;
  target: unknown;
  resolving: Promise<unknown> | undefined;
  /** Ownership token (owned and borrowed handles). */
  token?: string;
  /** A borrow's grant number (fencing: update and release present it; see docs/durability.md). */
  grant?: number;
  /**
   * Ephemeral proxies: this proxy object's consumer token, made once when
   * the proxy is made or revived from a ref and never put in a ref. A
   * consume whose reply was lost is recognised by it: resolving this same
   * proxy again gets the consumed value (the grace copy), while any other
   * proxy, even of the same ref, races for the object as a new consumer.
   */
  consumeToken?: string;
  /** A future's proxy: resolving waits for the result (`timeout` seconds at most). */
  future?: { timeout?: number };
  /** False once the handle was moved, released or dropped. */
  valid: boolean;
  /** Why the handle became invalid (for the error message). */
  invalidReason?: string;
  /** Set when the handle became invalid because its object's lifetime ended it (checkValid then throws LifetimeEndedError). */
  endedByLifetime?: boolean;
  /**
   * A borrow's release call token, kept across attempts: a release that
   * failed after it may have run (a lost reply, a DurabilityError) and is
   * called again is recognised as the same call, not refused as "already
   * released".
   */
  releaseCall?: string;
  /** Set when the handle ended because Redis lost its data: using it throws a RedisDataLostError. */
  dataLost?: boolean;
  /** `toJSON` as seen on the proxy: writes the ref. */
  toJSON: () => unknown;
}

const stateOfProxy = new WeakMap<object, ProxyState>();
const stateOfShadow = new WeakMap<object, ProxyState>();
const boundMethods = new WeakMap<ProxyState, Map<unknown, unknown>>();

/** Finds the store for a proxy revived from a ref; set by the registry module. */
let storeLookup: ((state: ProxyState) => TargetSource) | undefined;

/** @internal */
export function setStoreLookup(lookup: (state: ProxyState) => TargetSource): void {
  storeLookup = lookup;
}

/**
 * Ends an ownership handle (`drop`/`release`) for `await using`; set by the
 * ownership module, which is where that logic lives.
 */
let disposeHandle: ((proxy: object) => Promise<void>) | undefined;

/** @internal */
export function setHandleDisposer(dispose: (proxy: object) => Promise<void>): void {
  disposeHandle = dispose;
}

/**
 * Reads an ownership handle's target with its lease check (one script that
 * refuses a token whose lease lapsed, and returns the bytes); set by the
 * ownership module. Plain proxies never go through it: they stay a GET.
 */
let readHandle: ((state: ProxyState) => Promise<unknown>) | undefined;

/** @internal */
export function setHandleReader(read: (state: ProxyState) => Promise<unknown>): void {
  readHandle = read;
}

/**
 * While our serializer packs a value, proxies met inside it present
 * themselves as {@link ProxyRefCarrier} so msgpackr writes their ref instead
 * of their target. Packing is synchronous, so a counter is enough.
 */
let packingDepth = 0;

/** The class proxies impersonate while being packed; see `refs.ts`. */
export class ProxyRefCarrier {
  static [Symbol.hasInstance](value: unknown): boolean {
    return typeof value === 'object' && value !== null && stateOfProxy.has(value);
  }
}

/** Run `fn` with proxies packing as refs. @internal */
export function packingRefs<R>(fn: () => R): R {
  packingDepth++;
  try {
    return fn();
  } finally {
    packingDepth--;
  }
}

/** The state of a proxy, or undefined for anything else. @internal */
export function proxyState(value: unknown): ProxyState | undefined {
  return typeof value === 'object' && value !== null ? stateOfProxy.get(value) : undefined;
}

/** The state of a proxy; throws a clear error for anything else. @internal */
export function requireState(value: unknown, operation: string): ProxyState {
  const state = proxyState(value);
  if (!state) {
    throw new ProxyStoreFactoryError(`${operation} needs a proxy made by a store, got ${describeValue(value)}`);
  }
  return state;
}

function describeValue(value: unknown): string {
  if (value === null) return 'null';
  if (typeof value === 'object') return `an object (${Object.prototype.toString.call(value)})`;
  return `a ${typeof value}`;
}

/** Throws when an ownership handle was moved, released or dropped. @internal */
export function checkValid(state: ProxyState, what: string): void {
  if (state.valid) return;
  if (state.dataLost) throw new RedisDataLostError(`the ${state.kind} handle of key ${state.key} is invalid (${what}): ${state.invalidReason ?? ''}`, { key: state.key });
  if (state.endedByLifetime) {
    throw new LifetimeEndedError(`the ${state.kind} handle of key ${state.key} is invalid (${what}): ${state.invalidReason ?? 'its lifetime ended'}`, {
      key: state.key,
    });
  }
  throw new ReferenceInvalidError(
    `the ${state.kind} handle of key ${state.key} is invalid (${what}): ${state.invalidReason ?? 'it was moved, released or dropped'}`,
    { key: state.key },
  );
}

function notResolved(state: ProxyState, what: string): ProxyNotResolvedError {
  return new ProxyNotResolvedError(
    `proxy of key ${state.key} is not resolved (${what}): call \`await resolve(proxy)\` before using it`,
    { key: state.key },
  );
}

function describeProp(prop: string | symbol): string {
  return typeof prop === 'symbol' ? `symbol ${prop.description ?? ''}` : `property ${JSON.stringify(prop)}`;
}

/** The target, boxed when it is a primitive so that property access works. */
function real(state: ProxyState, what: string): object {
  checkValid(state, what);
  if (!state.resolved) throw notResolved(state, what);
  const t = state.target;
  return (typeof t === 'object' && t !== null) || typeof t === 'function' ? (t as object) : Object(t);
}

/** A method bound to the real target, cached so `p.get === p.get`. */
function bound(state: ProxyState, fn: (...args: unknown[]) => unknown, self: object): unknown {
  let cache = boundMethods.get(state);
  if (!cache) {
    cache = new Map();
    boundMethods.set(state, cache);
  }
  let b = cache.get(fn);
  if (!b) {
    b = fn.bind(self);
    cache.set(fn, b);
  }
  return b;
}

const handler: ProxyHandler<object> = {
  get(shadow, prop, receiver) {
    const state = stateOfShadow.get(shadow) as ProxyState;
    if (prop === 'toJSON') return state.toJSON;
    if (prop === 'then' && (!state.resolved || !state.valid)) return undefined;
    if (prop === Symbol.asyncDispose && state.kind !== 'proxy' && disposeHandle) {
      // `await using` on an ownership handle ends it (drop or release).
      const dispose = disposeHandle;
      return () => dispose(receiver as object);
    }
    if (packingDepth > 0 && prop === 'constructor') return ProxyRefCarrier;
    if (prop === Symbol.toStringTag && !state.resolved) {
      return (prototypeOfShape(state.shape) as Record<symbol, unknown> | null)?.[Symbol.toStringTag];
    }
    if (prop === inspect.custom) return (shadow as Record<symbol, unknown>)[inspect.custom];
    const target = real(state, `read ${describeProp(prop)}`);
    const value = Reflect.get(target, prop, target) as unknown;
    if (typeof value === 'function' && prop !== 'constructor' && !Object.prototype.hasOwnProperty.call(target, prop)) {
      // Inherited methods run with the real target as `this`: built-ins with
      // internal slots (Map, Set, Date, typed arrays) need it, and it spares
      // every other method a trip through the proxy.
      return bound(state, value as (...args: unknown[]) => unknown, target);
    }
    return value;
  },
  set(shadow, prop, value) {
    const state = stateOfShadow.get(shadow) as ProxyState;
    const target = real(state, `write ${describeProp(prop)}`);
    return Reflect.set(target, prop, value, target);
  },
  has(shadow, prop) {
    const state = stateOfShadow.get(shadow) as ProxyState;
    return Reflect.has(real(state, `\`in\` check of ${describeProp(prop)}`), prop);
  },
  deleteProperty(shadow, prop) {
    const state = stateOfShadow.get(shadow) as ProxyState;
    return Reflect.deleteProperty(real(state, `delete ${describeProp(prop)}`), prop);
  },
  defineProperty(shadow, prop, descriptor) {
    const state = stateOfShadow.get(shadow) as ProxyState;
    return Reflect.defineProperty(real(state, `define ${describeProp(prop)}`), prop, descriptor);
  },
  ownKeys(shadow) {
    const state = stateOfShadow.get(shadow) as ProxyState;
    const keys = Reflect.ownKeys(real(state, 'list its keys'));
    // Invariant: the shadow's non-configurable keys (an array shadow's
    // `length`) must be reported.
    for (const k of Reflect.ownKeys(shadow)) {
      const d = Reflect.getOwnPropertyDescriptor(shadow, k);
      if (d && !d.configurable && !keys.includes(k)) keys.push(k);
    }
    return keys;
  },
  getOwnPropertyDescriptor(shadow, prop) {
    const state = stateOfShadow.get(shadow) as ProxyState;
    const target = real(state, `describe ${describeProp(prop)}`);
    const desc = Reflect.getOwnPropertyDescriptor(target, prop);
    if (desc && !desc.configurable) {
      // Invariant: a non-configurable property must exist on the shadow too.
      const own = Reflect.getOwnPropertyDescriptor(shadow, prop);
      if (!own) Reflect.defineProperty(shadow, prop, desc);
      else if (own.configurable === false && 'value' in own && own.writable) {
        Reflect.defineProperty(shadow, prop, { value: desc.value });
      }
    }
    if (!desc) {
      const own = Reflect.getOwnPropertyDescriptor(shadow, prop);
      if (own && !own.configurable) return own;
    }
    return desc;
  },
  getPrototypeOf(shadow) {
    const state = stateOfShadow.get(shadow) as ProxyState;
    if (!state.resolved) return prototypeOfShape(state.shape);
    return Reflect.getPrototypeOf(real(state, 'prototype'));
  },
  setPrototypeOf(shadow, proto) {
    const state = stateOfShadow.get(shadow) as ProxyState;
    return Reflect.setPrototypeOf(real(state, 'set its prototype'), proto);
  },
  preventExtensions() {
    return false;
  },
  apply(shadow, thisArg, args) {
    const state = stateOfShadow.get(shadow) as ProxyState;
    return Reflect.apply(real(state, 'call it') as (...a: unknown[]) => unknown, thisArg, args);
  },
  construct(shadow, args, newTarget) {
    const state = stateOfShadow.get(shadow) as ProxyState;
    const target = real(state, 'construct it') as new (...a: unknown[]) => object;
    return Reflect.construct(target, args, newTarget === shadow ? target : newTarget);
  },
};

/** Options to {@link makeProxy}. */
export interface MakeProxyOptions {
  kind?: ProxyKind;
  storeName: string;
  namespace: string;
  key: string;
  shape: Shape;
  evict?: boolean;
  /** The object's reads budget (2 or more), for the ref. */
  reads?: number;
  source?: TargetSource;
  deserializer?: Deserializer;
  token?: string;
  grant?: number;
  /** Present when the target is already known (populateTarget). */
  target?: { value: unknown };
  /** A future's proxy: resolving waits for the result. */
  future?: { timeout?: number };
  /** Writes the ref of this proxy (set by refs.ts). */
  toRef: (proxy: object) => unknown;
}

/** Create a proxy. @internal */
export function makeProxy<T>(options: MakeProxyOptions): Proxy<T> {
  const shadow: object =
    options.shape === 'array' ? [] : options.shape === 'function' ? function proxyShadow() {} : {};
  const state: ProxyState = {
    kind: options.kind ?? 'proxy',
    storeName: options.storeName,
    namespace: options.namespace,
    key: options.key,
    shape: options.shape,
    evict: options.evict ?? false,
    source: options.source,
    deserializer: options.deserializer,
    resolved: options.target !== undefined,
    target: options.target?.value,
    resolving: undefined,
    valid: true,
    toJSON: () => undefined,
  };
  if (options.token !== undefined) state.token = options.token;
  if (options.grant !== undefined) state.grant = options.grant;
  if (options.reads !== undefined) state.reads = options.reads;
  if (options.future !== undefined) state.future = options.future;
  if (state.evict) state.consumeToken = randomId();
  const proxy = new Proxy(shadow, handler);
  state.toJSON = () => options.toRef(proxy);
  // util.inspect looks at the shadow, never through the traps.
  Object.defineProperty(shadow, inspect.custom, {
    configurable: true,
    enumerable: false,
    value: (depth: number, opts: object) =>
      !state.valid
        ? `Proxy<${state.key}, invalid ${state.kind}>`
        : state.resolved
          ? inspect(state.target, { ...opts, depth })
          : `Proxy<${state.key}, unresolved>`,
  });
  stateOfShadow.set(shadow, state);
  stateOfProxy.set(proxy, state);
  return proxy as Proxy<T>;
}

/**
 * Whether a value is a proxy made by a store.
 *
 * @example
 * ```ts
 * isProxy(await store.proxy([1, 2])); // true
 * isProxy([1, 2]); // false
 * ```
 */
export function isProxy(value: unknown): boolean {
  return proxyState(value) !== undefined;
}

/**
 * Whether a proxy's target is already in this process.
 *
 * @example
 * ```ts
 * const p = await store.proxy([1, 2], { populateTarget: false });
 * isResolved(p); // false
 * await resolve(p);
 * isResolved(p); // true
 * ```
 */
export function isResolved(proxy: unknown): boolean {
  return requireState(proxy, 'isResolved').resolved;
}

/**
 * Fetch a proxy's target (once; later calls return the same target) and
 * return it. An ephemeral proxy consumes its object here.
 *
 * @example
 * ```ts
 * const p = fromRef<number[]>(ref);
 * const values = await resolve(p);
 * ```
 */
export async function resolve<T>(proxy: T): Promise<T> {
  const state = requireState(proxy, 'resolve');
  checkValid(state, 'resolve');
  if (state.resolved) return state.target as T;
  if (!state.resolving) {
    // A handle reads only while its lease holds (checked in the same script as the read).
    let fetched: Promise<unknown>;
    if (state.kind !== 'proxy' && readHandle) {
      fetched = readHandle(state);
    } else {
      const options: ResolveOptions = { evict: state.evict };
      if (state.deserializer) options.deserializer = state.deserializer;
      if (state.consumeToken !== undefined) options.consumeToken = state.consumeToken;
      if (state.future !== undefined) options.future = state.future;
      // Taken here, synchronously: resolve's caller is the consumer's frame in the usual case (the cheap capture).
      if (state.evict) options.consumerFrame = callerFrameAbove(resolve);
      fetched = sourceOf(state).resolveTarget(state.key, options);
    }
    state.resolving = fetched.then(
        (value) => {
          state.target = value;
          state.resolved = true;
          state.resolving = undefined;
          return value;
        },
        (err: unknown) => {
          state.resolving = undefined;
          throw err;
        },
      );
  }
  return (await state.resolving) as T;
}

/**
 * The store that serves a proxy here: the one that made or revived it, or
 * the store of its name in this process. @internal
 */
export function sourceOf(state: ProxyState): TargetSource {
  return state.source && !state.source.isClosed ? state.source : lookup(state);
}

function lookup(state: ProxyState): TargetSource {
  if (!storeLookup) {
    throw new ProxyStoreFactoryError(`no store can resolve key ${state.key}`, { key: state.key });
  }
  return storeLookup(state);
}

/**
 * The target of a resolved proxy; throws {@link ProxyNotResolvedError} when
 * it is not resolved.
 *
 * @example
 * ```ts
 * await resolve(p);
 * JSON.stringify(extract(p)); // the value, not the ref
 * ```
 */
export function extract<T>(proxy: T): T {
  const state = requireState(proxy, 'extract');
  checkValid(state, 'extract');
  if (!state.resolved) throw notResolved(state, 'extract');
  return state.target as T;
}

/**
 * The store key of a proxy.
 *
 * @example
 * ```ts
 * const key = getKey(await store.proxy('x'));
 * await store.exists(key); // true
 * ```
 */
export function getKey(proxy: unknown): string {
  return requireState(proxy, 'getKey').key;
}
