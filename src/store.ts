/**
 * Store: ProxyStore's `Store` over a {@link RedisConnector}. It serializes
 * values, hands out proxies and refs, and resolves them.
 *
 * @module
 */
import { hostname } from 'node:os';
import { Readable } from 'node:stream';
import createDebug from 'debug';
import {
  InvalidOptionsError,
  NonProxiableTypeError,
  ProxyResolveMissingKeyError,
  ProxyStoreFactoryError,
  StoreClosedError,
  type ProxyStoreError,
} from './errors.js';
import { ObjectCache } from './cache/cache.js';
import { callerFrame, describeConsumer, explainConsumer, parseTombstone, tombstoneToken } from './consumer.js';
import { randomId, validateKey } from './keys.js';
import { dedupeItem, isDedupeKey } from './dedupe/key.js';
import { putDeduped, putHolder } from './dedupe/refs.js';
import { MetricsRecorder, type StoreMetrics } from './metrics.js';
import { MAX_EXPIRY_SECONDS, checkNumber, checkOptions } from './options.js';
import { isLifetime, kLifetimeAddKeys, kLifetimeFuture, kLifetimePut, type Lifetime } from './lifetimes/lifetime.js';
import { createOwnedProxy, type OwnedProxyOf, type OwnedProxyOptions } from './ownership/owned.js';
import { ProxyLocker } from './proxy/locker.js';
import { makeProxy, setStoreLookup, type Proxy, type ProxyState, type ResolveOptions, type TargetSource } from './proxy/proxy.js';
import { toRef } from './proxy/refs.js';
import { Future, awaitResult, checkFutureRules, setFutureHostLookup, type FutureOptions } from './future/future.js';
import { warnShortLease } from './redis/limits.js';
import { CONSUME_GRACE_MS, RedisConnector, type FromConfigOptions, type RedisConnectorConfig } from './redis/connector.js';
import { closedStore, getStore, registerStore, unregisterClosed } from './registry.js';
import { checkChunkSize } from './chunks/format.js';
import { StreamValue, putChunked, stage } from './chunks/put.js';
import { readBytes, streamBytes, type ByteReadContext } from './chunks/stream.js';
import { partsOf, rechunk, type ByteSource } from './chunks/write.js';
import {
  bufferHeader,
  deserialize,
  peekShape,
  serialize,
  serializeParts,
  shapeOf,
  type Deserializer,
  type Serializer,
  type Shape,
} from './serialize.js';

const log = createDebug('proxystore:store');

/** Options of a {@link Store}. */
export interface StoreOptions {
  /** Register the store by name (needed to resolve refs in this process). Default false. */
  register?: boolean;
  /** Default serializer (value to bytes) for this store. */
  serializer?: Serializer;
  /** Default deserializer (bytes to value) for this store. */
  deserializer?: Deserializer;
  /**
   * How many decoded objects this store keeps in a local LRU cache (an
   * integer from 0 to 16,777,216; 0 turns it off). Default 16, as ProxyStore.
   * Unlike ProxyStore's, the cache is never stale beyond an invalidation's
   * trip from Redis (about a millisecond): Redis announces every change,
   * eviction, consume, drop and expiry of the namespace's keys on a tracking
   * connection of the connector's own (one per Cluster master), and this
   * process's own writes show at once. See docs/cache.md.
   */
  cacheSize?: number;
  /** Whether `proxy()` returns an already-resolved proxy. Default true (as ProxyStore). */
  populateTarget?: boolean;
  /**
   * Seconds a borrow or StaticLifetime outlives a process that stopped
   * renewing it (renewed every `leaseTtl / 3`; the keys stay longer, 3 x
   * `leaseTtl` for owned objects and 2 x for static ones, so that a Redis outage loses nothing of a live process). From
   * 0.01 to 2,592,000 (30 days: the renewal timer must fit Node's timers).
   * Default 30.
   */
  leaseTtl?: number;
  /**
   * Seconds a consume tombstone is kept (it only serves error messages).
   * From 0.001 (1 ms, Redis's smallest expiry) to 5,000,000,000 (about 158 years). Default 300.
   */
  tombstoneTtl?: number;
  /** Record counts, timings and bytes per operation ({@link Store.metrics}). Default false. */
  metrics?: boolean;
  /**
   * Seconds after which an object put with no `ttl`, no `lifetime` and no
   * owner expires (a Redis TTL on each of its keys). From 0.001 (1 ms) to
   * 5,000,000,000. Default: unset, no expiry (as ProxyStore).
   */
  defaultTtl?: number;
  /**
   * Bytes per chunk of a large value (an integer from 1,024 to 536,870,912).
   * A value whose stored bytes exceed it is written as chunks of this size,
   * pipelined, into one Redis hash at the object's key, and read back into
   * one preallocated Buffer; every API works the same on it, and values
   * larger than one Redis value (512 MB) work. Default 4 MiB (measured:
   * docs/large-objects.md).
   */
  chunkSize?: number;
}

/** The serializable configuration of a Store. */
export interface StoreConfig {
  name: string;
  connector: RedisConnectorConfig;
  register: boolean;
  cacheSize: number;
  populateTarget: boolean;
  leaseTtl: number;
  tombstoneTtl: number;
  metrics: boolean;
  /** Absent when the store has none. */
  defaultTtl?: number;
  /** Bytes per chunk of a large value (see {@link StoreOptions.chunkSize}). */
  chunkSize: number;
}

/**
 * The rules an object can carry, on every call that stores one. Each ends
 * the object, and the first to do so wins (with `lifetime` too).
 */
export interface ObjectRuleOptions {
  /**
   * How many consuming resolves the object allows (a positive integer):
   * each resolve of a consuming ref (a proxy made with `reads`, or
   * `proxyFromKey(key, { evict: true })`) spends one, and the last deletes
   * the object and leaves the consume tombstone. The budget is a counter in
   * Redis, so racing consumers never get more than `reads` values between
   * them. `store.get` and `exists` never consume. 1 is `evict: true`.
   */
  reads?: number;
  /**
   * Seconds after which the object expires (a Redis TTL on each of its
   * keys), from 0.001 (1 ms) to 5,000,000,000. Under a lifetime it ends at
   * the earlier of this and the lifetime's end, and extending a lease never
   * carries it past this. Default: the store's `defaultTtl` for an object
   * with no lifetime, else none.
   */
  ttl?: number;
  /**
   * Store the value once per content: its key is derived from a hash
   * (SHA-256) of its stored bytes, so equal bytes get the same key in every
   * process of the namespace. A put of bytes that are stored already writes
   * nothing (a large value's bytes are not even sent) and adds one
   * reference; `store.evict(key)` takes one away, a `lifetime` holds one
   * until its end, and the object is deleted with its last reference. With
   * `ttl` (or the store's `defaultTtl`) a reference ends by itself: the
   * object lives until the latest end of its references. Not with `evict`,
   * `reads` or ownership (a shared object cannot be consumed or owned).
   */
  dedupe?: boolean;
}

/** Options of `put`/`putBatch`. */
export interface PutOptions extends ObjectRuleOptions {
  /** Evict the object when this lifetime ends. */
  lifetime?: Lifetime;
  /** Serializer for this call. */
  serializer?: Serializer;
}

/** Options of `putStream`: the rules of `put` (see {@link ObjectRuleOptions}), without `dedupe`. */
export interface PutStreamOptions {
  /** Evict the object when this lifetime ends. */
  lifetime?: Lifetime;
  /** `reads: 1` (consumed by the first consuming resolve of a ref of the key). */
  evict?: boolean;
  /** See {@link ObjectRuleOptions.reads}. */
  reads?: number;
  /** See {@link ObjectRuleOptions.ttl}. */
  ttl?: number;
}

/** Options of `get`. */
export interface GetOptions<D = undefined> {
  /** Deserializer for this call. */
  deserializer?: Deserializer;
  /** Returned when the key is missing (default `undefined`). */
  default?: D;
}

/** Options of `proxy`, `proxyBatch` and `lockedProxy`. */
export interface ProxyOptions extends ObjectRuleOptions {
  /** Ephemeral: the object is consumed by the first resolve (from a ref); `reads: 1`. */
  evict?: boolean;
  /** Evict the object when this lifetime ends. */
  lifetime?: Lifetime;
  /** Return a proxy that is already resolved (default: the store's `populateTarget`). */
  populateTarget?: boolean;
  /** Return `null`, `undefined` and booleans as they are instead of throwing. */
  skipNonproxiable?: boolean;
  serializer?: Serializer;
  /** Deserializer used when this proxy is resolved in this process. */
  deserializer?: Deserializer;
}

/** Options of `proxyFromKey`. */
export interface ProxyFromKeyOptions {
  /** The proxy consumes: each resolve of its ref spends one read of the object (its only one, unless it was put with `reads`). */
  evict?: boolean;
  lifetime?: Lifetime;
  deserializer?: Deserializer;
}

/** The option names each call takes (unknown ones are refused, with a hint). */
const STORE_OPTIONS = ['register', 'serializer', 'deserializer', 'cacheSize', 'populateTarget', 'leaseTtl', 'tombstoneTtl', 'metrics', 'defaultTtl', 'chunkSize'] as const;
const PUT_STREAM_OPTIONS = ['lifetime', 'evict', 'reads', 'ttl'] as const;
const PUT_OPTIONS = ['lifetime', 'serializer', 'reads', 'ttl', 'dedupe'] as const;
const GET_OPTIONS = ['deserializer', 'default'] as const;
const PROXY_OPTIONS = ['evict', 'lifetime', 'populateTarget', 'skipNonproxiable', 'serializer', 'deserializer', 'reads', 'ttl', 'dedupe'] as const;
const PROXY_FROM_KEY_OPTIONS = ['evict', 'lifetime', 'deserializer'] as const;
// `evict`, `reads` and `ttl` are known here so that they get ownedProxy's own explanation.
const OWNED_PROXY_OPTIONS = ['populateTarget', 'skipNonproxiable', 'serializer', 'deserializer', 'evict', 'lifetime', 'reads', 'ttl', 'dedupe'] as const;
const CLOSE_OPTIONS = ['closeConnector'] as const;
const FUTURE_OPTIONS = ['evict', 'reads', 'lifetime', 'ttl', 'timeout', 'serializer', 'deserializer'] as const;
const FROM_CONFIG_OPTIONS = ['password', 'redisOptions', 'clusterOptions', 'serializer', 'deserializer'] as const;

/** The ranges of the Store's number options (see {@link StoreOptions}). */
const LEASE_TTL = { unit: 'seconds', min: 0.01, max: 30 * 24 * 3600 };
const TOMBSTONE_TTL = { unit: 'seconds', min: 0.001, max: MAX_EXPIRY_SECONDS };
// V8's largest Map.
const CACHE_SIZE = { min: 0, max: 2 ** 24, integer: true };
/** ProxyStore's `cache_size`. */
const DEFAULT_CACHE_SIZE = 16;
/** `ttl` and `defaultTtl`: a whole millisecond at least, as Redis expires. */
const TTL = { unit: 'seconds', min: 0.001, max: MAX_EXPIRY_SECONDS };
/** `reads`: lua/objectPut.lua and lifetimePut take up to 10^9. */
const READS = { min: 1, max: 1_000_000_000, integer: true };

/** The rules of one call, checked: a reads budget (1: none), an own ttl in ms, and whether the object is deduped. */
interface CheckedRules {
  reads: number;
  ttlMs: number | undefined;
  dedupe?: boolean;
}

/**
 * Check `reads`, `ttl` and `evict` of a call. `evict: true` is `reads: 1`
 * (given together, `reads` says how many); `evict: false` with `reads` is a
 * contradiction. Without `ttl`, an object with no lifetime gets the store's
 * `defaultTtl`.
 */
function checkRules(where: string, options: ObjectRuleOptions & { evict?: boolean; lifetime?: unknown }, defaultTtl: number | undefined): CheckedRules {
  const reads = options.reads === undefined ? 1 : checkNumber(`${where}: reads`, options.reads, READS);
  if (options.reads !== undefined && options.evict === false) {
    throw new InvalidOptionsError(`${where}: reads makes the proxy consuming, so evict: false contradicts it (evict: true is reads: 1; give one of them)`);
  }
  const ttl = options.ttl === undefined ? (options.lifetime === undefined ? defaultTtl : undefined) : checkNumber(`${where}: ttl`, options.ttl, TTL);
  const dedupe = checkBoolean(`${where}: dedupe`, options.dedupe) ?? false;
  if (dedupe && (options.reads !== undefined || options.evict === true)) {
    throw new InvalidOptionsError(
      `${where}: dedupe shares the object between every put of equal bytes, so it cannot be consumed: ${options.reads !== undefined ? 'reads' : 'evict: true'} ` +
        'does not combine with dedupe (store.evict(key) drops one reference of a deduped object)',
    );
  }
  if (dedupe && options.lifetime !== undefined && options.ttl !== undefined) {
    throw new InvalidOptionsError(
      `${where}: dedupe with a lifetime takes no ttl: the lifetime holds one reference on the object, shared by all its puts of ` +
        'those bytes, which ends with the lifetime; put without the lifetime to hold a reference that ends at a ttl',
    );
  }
  return { reads, ttlMs: ttl === undefined ? undefined : Math.max(1, Math.round(ttl * 1000)), ...(dedupe ? { dedupe } : {}) };
}

const NO_RULES: CheckedRules = { reads: 1, ttlMs: undefined };

/** What {@link Store.cachedOrRead} returns for a missing key. */
const MISSING: unique symbol = Symbol('missing');

function checkBoolean(name: string, value: unknown): boolean | undefined {
  if (value === undefined || typeof value === 'boolean') return value;
  throw new InvalidOptionsError(`${name} must be a boolean, got ${value === null ? 'null' : typeof value}`);
}

function checkFunction<F>(name: string, value: unknown): F | undefined {
  if (value === undefined || typeof value === 'function') return value as F | undefined;
  throw new InvalidOptionsError(`${name} must be a function, got ${value === null ? 'null' : typeof value}`);
}

/** Options of {@link Store.fromConfig}: what a config never carries. */
export interface StoreFromConfigOptions extends FromConfigOptions {
  /** The serializer the original store had (functions are not part of a config). */
  serializer?: Serializer;
  /** The deserializer the original store had. */
  deserializer?: Deserializer;
}

/** Values that cannot be proxied; `skipNonproxiable` leaves them as they are. */
export type NonProxiable = null | undefined | boolean;
/** What `proxy(value)` returns for a value of type T. */
export type ProxyOf<T> = T extends NonProxiable ? T : Proxy<T>;

function checkLifetime(lifetime: unknown): Lifetime {
  if (!isLifetime(lifetime)) throw new InvalidOptionsError('`lifetime` must be a ContextLifetime, LeaseLifetime or StaticLifetime');
  return lifetime;
}

function isNonProxiable(value: unknown): value is NonProxiable {
  return value === null || value === undefined || typeof value === 'boolean';
}

/** A consuming ref of a deduped object: refused (it is shared; consuming it would take it from every holder). */
function cannotConsume(key: string): InvalidOptionsError {
  return new InvalidOptionsError(
    `key ${key} is a deduped object (dedupe: true), shared by every put of equal bytes: it cannot be consumed (evict, reads); ` +
      'resolve it without evict, and drop your reference with store.evict(key)',
    { key },
  );
}

function nonProxiable(value: NonProxiable): NonProxiableTypeError {
  return new NonProxiableTypeError(`cannot proxy ${String(value)}: null, undefined and booleans are not proxiable`);
}


/**
 * A named store of objects in Redis.
 *
 * @example
 * ```ts
 * const store = new Store('default', new RedisConnector({ url, namespace: 'app' }), { register: true });
 * const key = await store.put({ hello: 'world' });
 * await store.get(key); // { hello: 'world' }
 * await store.close();
 * ```
 */
export class Store implements TargetSource {
  readonly name: string;
  readonly connector: RedisConnector;
  readonly leaseTtl: number;
  readonly tombstoneTtl: number;
  readonly populateTarget: boolean;
  readonly cacheSize: number;
  /** Seconds after which objects with no ttl, lifetime or owner expire; undefined: never. */
  readonly defaultTtl: number | undefined;
  /** Bytes per chunk of a large value ({@link StoreOptions.chunkSize}). */
  readonly chunkSize: number;
  private readonly serializer: Serializer | undefined;
  private readonly deserializer: Deserializer | undefined;
  private readonly registered: boolean;
  private readonly cache: ObjectCache | undefined;
  private readonly closeHooks: (() => Promise<void>)[] = [];
  private closing: Promise<void> | undefined;
  private readonly recorder: MetricsRecorder | undefined;

  /**
   * Every option is checked here, before anything else happens; a connector
   * opens its connection only at its first command (or `ready()`), so a
   * constructor that throws leaves nothing open.
   *
   * @throws {@link InvalidOptionsError} naming a bad or unknown option.
   * @throws {@link StoreExistsError} with `register: true` when a store of that name is registered.
   */
  constructor(name: string, connector: RedisConnector, options: StoreOptions = {}) {
    if (typeof name !== 'string' || name.length === 0) {
      throw new InvalidOptionsError(`a store name must be a non-empty string, got ${JSON.stringify(name)}`);
    }
    if (!(connector instanceof RedisConnector)) {
      throw new InvalidOptionsError(`Store ${name} needs a RedisConnector`);
    }
    checkOptions(`new Store(${JSON.stringify(name)})`, options, STORE_OPTIONS);
    this.name = name;
    this.connector = connector;
    this.cacheSize = options.cacheSize === undefined ? DEFAULT_CACHE_SIZE : checkNumber('cacheSize', options.cacheSize, CACHE_SIZE);
    this.populateTarget = checkBoolean('populateTarget', options.populateTarget) ?? true;
    this.leaseTtl = options.leaseTtl === undefined ? 30 : checkNumber('leaseTtl', options.leaseTtl, LEASE_TTL);
    this.tombstoneTtl = options.tombstoneTtl === undefined ? 300 : checkNumber('tombstoneTtl', options.tombstoneTtl, TOMBSTONE_TTL);
    this.defaultTtl = options.defaultTtl === undefined ? undefined : checkNumber('defaultTtl', options.defaultTtl, TTL);
    this.chunkSize = checkChunkSize(options.chunkSize);
    this.serializer = checkFunction<Serializer>('serializer', options.serializer);
    this.deserializer = checkFunction<Deserializer>('deserializer', options.deserializer);
    this.registered = checkBoolean('register', options.register) ?? false;
    this.recorder = checkBoolean('metrics', options.metrics) ? new MetricsRecorder() : undefined;
    if (connector.isClosed) throw new StoreClosedError(`Store ${name}: its connector (namespace ${connector.namespace}) is closed`);
    if (this.registered) registerStore(this);
    this.cache = this.cacheSize > 0 ? new ObjectCache(this.cacheSize, connector, this.recorder) : undefined;
    if (connector.isCluster) {
      // Once per store: a leaseTtl shorter than a failover (see warnShortLease).
      let warned = false;
      const stop = connector.whenServerLearned((learned) => {
        warned ||= warnShortLease(name, this.leaseTtl, learned.nodeTimeoutMs);
        if (warned) queueMicrotask(() => stop());
      });
      this.onClose(async () => stop());
    }
  }

  /**
   * Resolves once the store's connection to Redis is up and the server
   * checked (Redis 7.0 or later), and, with `cacheSize` > 0, once the
   * cache's invalidation tracking is on (or the command timeout passed:
   * until it is on, the cache only misses); rejects with the connection error (naming
   * the address and the cause, e.g. `ECONNREFUSED 127.0.0.1:6379`) otherwise.
   * Optional: every operation connects by itself.
   *
   * @example
   * ```ts
   * const store = new Store('default', new RedisConnector({ url, namespace: 'app' }));
   * await store.ready(); // fail at start-up, not at the first put
   * ```
   */
  async ready(): Promise<void> {
    this.checkOpen('ready');
    await this.connector.ready();
    // With the cache on: also its invalidation tracking (bounded: a cache that cannot track only misses).
    await this.cache?.whenServing(this.connector.commandDeadlineMs());
  }

  /** The connector's namespace. */
  get namespace(): string {
    return this.connector.namespace;
  }

  /** Whether {@link close} has been called. */
  get isClosed(): boolean {
    return this.closing !== undefined;
  }

  /** Run `body` as one call of `op` for the metrics, when they are on. @internal */
  measure<T>(op: string, body: () => Promise<T>): Promise<T> {
    return this.recorder ? this.recorder.time(op, body) : body();
  }

  /**
   * Counts, timings and bytes per operation since the store was made, or
   * undefined when the store was made without `{ metrics: true }`.
   *
   * @example
   * ```ts
   * const store = new Store('s', connector, { metrics: true });
   * await store.put([1, 2, 3]);
   * store.metrics()?.put; // { count: 1, errors: 0, avgMs: 0.4, bytes: 7, ... }
   * ```
   */
  metrics(): StoreMetrics | undefined {
    return this.recorder?.snapshot();
  }

  /** Start the metrics from zero (no-op when metrics are off). */
  resetMetrics(): void {
    this.recorder?.reset();
  }

  /** @internal Throw {@link StoreClosedError} once {@link close} was called. */
  checkOpen(operation: string): void {
    if (this.closing) {
      throw new StoreClosedError(`store ${this.name} is closed (${operation}): make a new Store to go on`);
    }
    // The first operation starts the cache's tracking, so it is on by the first reads.
    this.cache?.start();
  }

  /** @internal Serialize with this store's serializer unless one is given. */
  encode(value: unknown, serializer: Serializer | undefined): Buffer {
    return serialize(value, serializer ?? this.serializer);
  }

  /**
   * @internal The stored bytes of a value as parts: a large Buffer or typed
   * array (over `chunkSize`) as its header and its own memory, so that its
   * chunks are written without a copy of the payload; anything else as the
   * one Buffer {@link encode} makes.
   */
  encodeParts(value: unknown, serializer: Serializer | undefined): Buffer | Uint8Array[] {
    if (ArrayBuffer.isView(value) && value.byteLength > this.chunkSize) return serializeParts(value, serializer ?? this.serializer);
    return this.encode(value, serializer);
  }

  /** @internal Deserialize with this store's deserializer unless one is given. */
  decode(bytes: Buffer, key: string, deserializer: Deserializer | undefined): unknown {
    return deserialize(bytes, key, deserializer ?? this.deserializer);
  }

  private write(values: Buffer[], lifetime: Lifetime | undefined, rules: CheckedRules): Promise<string[]> {
    if (lifetime !== undefined) {
      try {
        const checked = checkLifetime(lifetime);
        return this.connector
          // (Values over chunkSize are chunked; deduped ones never are: docs/large-objects.md.)
          .checkFits(rules.dedupe ? values : values.filter((v) => v.length <= this.chunkSize), 'put')
          .then(() => checked[kLifetimePut](this, values, rules));
      } catch (err) {
        return Promise.reject(err);
      }
    }
    if (rules.reads > 1) return this.connector.putWithReads(values, rules.reads, rules.ttlMs, this.chunkSize);
    if (values.some((v) => v.length > this.chunkSize)) return this.writeMixed(values, rules.ttlMs);
    return this.connector.putBatch(values, rules.ttlMs);
  }

  /**
   * A batch with values over `chunkSize` (and no other rule than a ttl): the
   * small ones in one batch, each large one chunked, all at once. On failure
   * what was written is evicted (the keys are fresh), and the error thrown.
   */
  private async writeMixed(values: Buffer[], ttlMs: number | undefined): Promise<string[]> {
    const small = values.filter((v) => v.length <= this.chunkSize);
    const outcomes = await Promise.allSettled([
      small.length > 0 ? this.connector.putBatch(small, ttlMs) : Promise.resolve([]),
      ...values.filter((v) => v.length > this.chunkSize).map((v) => this.putLarge([v], v.length, ttlMs)),
    ]);
    const failed = outcomes.find((o) => o.status === 'rejected');
    if (failed) {
      const written = outcomes.flatMap((o) => (o.status === 'fulfilled' ? (Array.isArray(o.value) ? o.value : [o.value]) : []));
      await Promise.allSettled(written.map((k) => this.connector.evict(k)));
      throw (failed as PromiseRejectedResult).reason;
    }
    const smallKeys = (outcomes[0] as PromiseFulfilledResult<string[]>).value;
    let s = 0;
    let l = 1;
    return values.map((v) =>
      v.length <= this.chunkSize ? (smallKeys[s++] as string) : ((outcomes[l++] as PromiseFulfilledResult<string>).value),
    );
  }

  /**
   * Serialize and store a value; returns its new key.
   *
   * @example
   * ```ts
   * const key = await store.put(new Map([['a', 1]]));
   * ```
   */
  put(value: unknown, options: PutOptions = {}): Promise<string> {
    let rules: CheckedRules;
    try {
      checkOptions('store.put', options, PUT_OPTIONS);
      rules = this.rulesOf('store.put', options);
    } catch (err) {
      return Promise.reject(err);
    }
    return this.putChecked(value, options, rules);
  }

  /** The checked rules of a call; the common call, with none, costs nothing. */
  private rulesOf(where: string, options: PutOptions & { evict?: boolean }): CheckedRules {
    if (
      options.reads === undefined &&
      options.ttl === undefined &&
      options.dedupe === undefined &&
      (this.defaultTtl === undefined || options.lifetime !== undefined)
    ) {
      return NO_RULES;
    }
    return checkRules(where, options, this.defaultTtl);
  }

  /** `put` with options already checked (by `put`, or by `proxy` against its own list). */
  private putChecked(value: unknown, options: PutOptions, rules: CheckedRules): Promise<string> {
    if (this.recorder) return this.recorder.time('put', () => this.putOne(value, options, rules));
    try {
      return this.putOne(value, options, rules);
    } catch (err) {
      return Promise.reject(err);
    }
  }

  /** Not async on purpose: the plain put is the hottest path (one SET, no extra promise hop). */
  private putOne(value: unknown, options: PutOptions, rules: CheckedRules): Promise<string> {
    this.checkOpen('put');
    if (rules.dedupe && options.lifetime === undefined) return this.putDedupedValues([value], options, rules).then((keys) => keys[0] as string);
    if (ArrayBuffer.isView(value) && value.byteLength > this.chunkSize && !rules.dedupe) {
      // A large Buffer or typed array: chunked from its own memory (header and payload apart, no copy of the payload).
      const parts = serializeParts(value, options.serializer ?? this.serializer);
      const size = parts.reduce((n, p) => n + p.byteLength, 0);
      this.recorder?.bytes('put', size);
      if (options.lifetime !== undefined) {
        try {
          return checkLifetime(options.lifetime)[kLifetimePut](this, [new StreamValue(parts)], rules).then((keys) => keys[0] as string);
        } catch (err) {
          return Promise.reject(err);
        }
      }
      if (rules.reads > 1) {
        const key = this.connector.newKey();
        return stage(this.connector, key, parts, this.chunkSize)
          .then((staged) => this.connector.commitWithReads(key, staged, rules.reads, rules.ttlMs))
          .then(() => key);
      }
      return this.putLarge(parts, size, rules.ttlMs);
    }
    const bytes = this.encode(value, options.serializer);
    this.recorder?.bytes('put', bytes.length);
    if (options.lifetime === undefined && rules.reads === 1 && !rules.dedupe) {
      if (bytes.length > this.chunkSize) return this.putLarge([bytes], bytes.length, rules.ttlMs);
      // One SET (with PX for a ttl): nothing else to keep.
      const key = this.connector.newKey();
      if (log.enabled) log('PUT %s (%d bytes)', key, bytes.length);
      return this.connector.set(key, bytes, rules.ttlMs).then(() => key);
    }
    return this.write([bytes], options.lifetime, rules).then((keys) => {
      if (log.enabled) log('PUT %s (%d bytes)', keys[0], bytes.length);
      return keys[0] as string;
    });
  }

  /** A new object of `size` stored bytes over `chunkSize`, with no rules record: chunks and one commit (src/chunks/). */
  private async putLarge(parts: ByteSource, size: number | undefined, ttlMs: number | undefined): Promise<string> {
    const key = this.connector.newKey();
    await putChunked(this.connector, key, parts, this.chunkSize, ttlMs);
    if (log.enabled) log('PUT %s (%s bytes, chunked)', key, size ?? '?');
    return key;
  }

  /**
   * Deduped values with no lifetime: hashed without copying a large Buffer's
   * bytes, which are made and sent only when no equal bytes are stored. One
   * reference per value (a token each: equal values of one batch hold one each).
   */
  private putDedupedValues(values: unknown[], options: PutOptions, rules: CheckedRules): Promise<string[]> {
    const items = values.map((v) => dedupeItem(serializeParts(v, options.serializer ?? this.serializer)));
    if (this.recorder) this.recorder.bytes(values.length === 1 ? 'put' : 'putBatch', items.reduce((n, item) => n + item.size, 0));
    return putDeduped(this.connector, items, () => putHolder(rules.ttlMs));
  }

  /**
   * Store many values in one round trip; returns their keys in order.
   *
   * @example
   * ```ts
   * const [k1, k2] = await store.putBatch(['a', 'b']);
   * ```
   */
  putBatch(values: unknown[], options: PutOptions = {}): Promise<string[]> {
    let rules: CheckedRules;
    try {
      checkOptions('store.putBatch', options, PUT_OPTIONS);
      rules = this.rulesOf('store.putBatch', options);
    } catch (err) {
      return Promise.reject(err);
    }
    return this.measure('putBatch', () => this.putMany(values, options, rules));
  }

  private async putMany(values: unknown[], options: PutOptions, rules: CheckedRules): Promise<string[]> {
    this.checkOpen('putBatch');
    if (!Array.isArray(values)) throw new InvalidOptionsError('putBatch takes an array of values');
    if (values.length === 0) return [];
    if (rules.dedupe && options.lifetime === undefined) return this.putDedupedValues(values, options, rules);
    const encoded = values.map((v) => this.encode(v, options.serializer));
    if (this.recorder) this.recorder.bytes('putBatch', encoded.reduce((n, b) => n + b.length, 0));
    const keys = await this.write(encoded, options.lifetime, rules);
    if (log.enabled) log('PUT %d keys', keys.length);
    return keys;
  }

  /**
   * The value under a key, or `options.default` (undefined) when missing.
   *
   * @throws {@link SerializationError} naming the key when its bytes cannot be decoded.
   * @example
   * ```ts
   * const value = await store.get<number[]>(key);
   * ```
   */
  get<T = unknown, D = undefined>(key: string, options: GetOptions<D> = {}): Promise<T | D> {
    try {
      checkOptions('store.get', options, GET_OPTIONS);
    } catch (err) {
      return Promise.reject(err);
    }
    return this.measure('get', () => this.getOne<T, D>(key, options));
  }

  private async getOne<T, D>(key: string, options: GetOptions<D>): Promise<T | D> {
    this.checkOpen('get');
    validateKey(key);
    const found = await this.cachedOrRead(key, 'get', options.deserializer);
    return found === MISSING ? (options.default as D) : (found as T);
  }

  /**
   * A plain (non-consuming) read: from the cache when it holds the key, else
   * a GET whose decoded value the cache keeps. {@link MISSING} when the key
   * is missing.
   */
  private async cachedOrRead(key: string, op: 'get' | 'resolve', deserializer: Deserializer | undefined): Promise<unknown> {
    // A per-call deserializer may decode differently: such reads bypass the cache.
    const cache = deserializer === undefined ? this.cache : undefined;
    if (cache) {
      const wait = cache.settle();
      if (wait) await wait;
      const hit = cache.getValue(key);
      if (hit) {
        log('GET %s (cached)', key);
        return hit.value;
      }
    }
    log(op === 'get' ? 'GET %s' : 'GET %s (resolve)', key);
    const ticket = cache?.begin(key);
    let bytes: Buffer | undefined;
    try {
      bytes = await this.connector.get(key);
    } catch (err) {
      if (ticket) cache?.end(ticket);
      throw err;
    }
    if (bytes === undefined) {
      if (ticket) cache?.end(ticket);
      return MISSING;
    }
    this.recorder?.bytes(op, bytes.length);
    let value: unknown;
    try {
      value = deserialize(bytes, key, deserializer ?? this.deserializer);
    } finally {
      if (ticket) cache?.end(ticket, { value, hasValue: true });
    }
    return value;
  }

  /**
   * Store the bytes of a stream as a Buffer value (`store.get` of the key
   * gives a Buffer) and return its key. The stream is read a chunk at a time
   * (`chunkSize`), each chunk written as soon as it is full, with at most a
   * few chunks in flight: the process's memory stays bounded by a few chunks
   * whatever the size. A stream that errors (or is destroyed) leaves nothing
   * behind (its chunks wait in a staging hash that is unlinked, and expires
   * anyway) and the call rejects with the stream's error. Takes the rules of
   * `put`: `lifetime`, `reads`/`evict`, `ttl`.
   *
   * @example
   * ```ts
   * const key = await store.putStream(fs.createReadStream('weights.bin'), { ttl: 3600 });
   * ```
   */
  async putStream(readable: Readable | AsyncIterable<Uint8Array>, options: PutStreamOptions = {}): Promise<string> {
    checkOptions('store.putStream', options, PUT_STREAM_OPTIONS);
    const rules = checkRules('store.putStream', options, this.defaultTtl);
    if (readable === null || typeof readable !== 'object' || typeof (readable as AsyncIterable<Uint8Array>)[Symbol.asyncIterator] !== 'function') {
      throw new InvalidOptionsError('store.putStream takes a Readable (or an async iterable of Buffers / Uint8Arrays)');
    }
    this.checkOpen('putStream');
    return this.measure('putStream', async () => {
      const source = (async function* () {
        yield bufferHeader();
        yield* partsOf(readable as ByteSource);
      })();
      const chunks = rechunk(source, this.chunkSize)[Symbol.asyncIterator]();
      const first = await chunks.next();
      const second = first.done || first.value.length < this.chunkSize ? undefined : await chunks.next();
      if (first.done || second === undefined || second.done) {
        // It fits in one value: the ordinary put of its bytes.
        const bytes = first.done ? bufferHeader() : Buffer.from(first.value);
        this.recorder?.bytes('putStream', bytes.length);
        if (options.lifetime === undefined && rules.reads === 1) {
          const key = this.connector.newKey();
          await this.connector.set(key, bytes, rules.ttlMs);
          return key;
        }
        return (await this.write([bytes], options.lifetime, rules))[0] as string;
      }
      const all = (async function* () {
        yield first.value;
        yield second.value;
        for (let next = await chunks.next(); !next.done; next = await chunks.next()) yield next.value;
      })();
      if (options.lifetime !== undefined) {
        // The lifetime's put stages the stream under the key it makes, then commits it with the membership (lifetimePut).
        return (await checkLifetime(options.lifetime)[kLifetimePut](this, [new StreamValue(all)], rules))[0] as string;
      }
      if (rules.reads > 1) {
        const key = this.connector.newKey();
        await this.connector.commitWithReads(key, await stage(this.connector, key, all, this.chunkSize), rules.reads, rules.ttlMs);
        return key;
      }
      return this.putLarge(all, undefined, rules.ttlMs);
    });
  }

  /**
   * The bytes of a Buffer value (or a typed array's bytes) as a Readable,
   * with backpressure: a chunk (`chunkSize` bytes) is read from Redis as the
   * consumer pulls, at most two ahead of it, so a slow consumer never makes
   * the process hold the whole object. Works for chunked and non-chunked
   * values. Errors are emitted on the stream, typed:
   * {@link ProxyResolveMissingKeyError} for a missing key (or one changed
   * by an update, eviction or consume while it was streamed),
   * {@link InvalidOptionsError} for a value that is not a Buffer or typed
   * array (its bytes are an encoding: read it with `get`).
   *
   * @example
   * ```ts
   * await pipeline(store.getStream(key), fs.createWriteStream('out.bin'));
   * ```
   */
  getStream(key: string): Readable {
    const ctx = (): ByteReadContext => {
      this.checkOpen('getStream');
      validateKey(key);
      return this.byteReads(key);
    };
    const bytes = (async function* () {
      yield* streamBytes(ctx());
    })();
    return Readable.from(bytes, { objectMode: false, highWaterMark: 1 });
  }

  /**
   * Bytes [start, end) of a Buffer value (or a typed array's bytes): `end`
   * is exclusive, as in `Buffer.subarray`. Reads only what the range needs
   * (GETRANGE of a value stored whole, only the chunks the range lies in for
   * a chunked one).
   *
   * @throws {@link InvalidOptionsError} for a range that is not 0 <= start <= end <= the value's length, or a value that is not binary.
   * @throws {@link ProxyResolveMissingKeyError} when the key is missing.
   * @example
   * ```ts
   * const header = await store.getRange(key, 0, 64);
   * ```
   */
  getRange(key: string, start: number, end: number): Promise<Buffer> {
    return this.measure('getRange', async () => {
      this.checkOpen('getRange');
      validateKey(key);
      return readBytes(this.byteReads(key), start, end);
    });
  }

  private byteReads(key: string): ByteReadContext {
    return {
      io: this.connector,
      redisKey: this.connector.dataKey(key),
      key,
      missing: async () => this.explainMissing(key, await this.connector.tombstone(key).catch(() => undefined), undefined),
    };
  }

  /** Whether `key` is in this store's local cache (`cacheSize`). */
  isCached(key: string): boolean {
    return this.cache?.has(key) ?? false;
  }

  /** @internal The store's object cache (src/cache/), when `cacheSize` > 0. */
  get objectCache(): ObjectCache | undefined {
    return this.cache;
  }

  /**
   * Whether the key exists in Redis.
   *
   * @example
   * ```ts
   * await store.exists(key); // true
   * ```
   */
  exists(key: string): Promise<boolean> {
    return this.measure('exists', async () => {
      this.checkOpen('exists');
      return this.connector.exists(key);
    });
  }

  /**
   * Delete a key (a missing key is fine). A deduped object (`dedupe: true`)
   * loses one reference instead, and is deleted with its last.
   *
   * @example
   * ```ts
   * await store.evict(key);
   * ```
   */
  evict(key: string): Promise<void> {
    return this.measure('evict', async () => {
      this.checkOpen('evict');
      log('EVICT %s', key);
      await this.connector.evict(key);
    });
  }

  /** @internal Resolve a proxy's target; see {@link TargetSource}. */
  resolveTarget(key: string, options: ResolveOptions): Promise<unknown> {
    return this.measure(options.evict ? 'consume' : 'resolve', () => this.fetchTarget(key, options));
  }

  private async fetchTarget(key: string, options: ResolveOptions): Promise<unknown> {
    this.checkOpen('resolve');
    if (options.future !== undefined) {
      // A future's proxy: wait for the result, then read it as any proxy.
      const { future, ...read } = options;
      return awaitResult(this, key, read, { timeoutMs: future.timeout === undefined ? undefined : Math.round(future.timeout * 1000) });
    }
    const deserializer = options.deserializer ?? this.deserializer;
    if (options.evict) {
      if (isDedupeKey(key)) throw cannotConsume(key);
      const consumer = describeConsumer('consumerFrame' in options ? options.consumerFrame : callerFrame());
      // The proxy's own token: resolving the same proxy again after a failure
      // whose outcome is unclear gets the value it may already have consumed.
      const token = options.consumeToken ?? randomId();
      log('GET %s (ephemeral)', key);
      const reply = await this.connector.consume(key, consumer, Math.round(this.tombstoneTtl * 1000), token);
      if (!reply.consumed) throw await this.explainMissing(key, reply.tombstone, reply.nowMs, token);
      log('EVICT %s (consumed)', key);
      this.recorder?.bytes('consume', reply.value.length);
      return deserialize(reply.value, key, deserializer);
    }
    const found = await this.cachedOrRead(key, 'resolve', options.deserializer);
    if (found === MISSING) throw await this.explainMissing(key, await this.connector.tombstone(key).catch(() => undefined), undefined);
    return found;
  }

  /** {@link missing}, or a RedisDataLostError when the object went with its server's data. */
  private async explainMissing(key: string, tombstone: Buffer | undefined, nowMs: number | undefined, token?: string): Promise<ProxyStoreError> {
    // A tombstone says who consumed it: that is the answer, whatever happened since.
    if (tombstone === undefined) {
      const lost = await this.connector.dataLost(this.connector.dataKey(key), `key ${key} of store ${this.name} is missing`, { key });
      if (lost) return lost;
    }
    return this.missing(key, tombstone, nowMs, token);
  }

  private missing(key: string, tombstone: Buffer | undefined, nowMs: number | undefined, token?: string): ProxyResolveMissingKeyError {
    if (tombstone !== undefined) {
      const consumedBy = parseTombstone(tombstone, nowMs);
      if (token !== undefined && tombstoneToken(tombstone) === token) {
        // This very proxy consumed it, and never got the value: the reply was
        // lost and the grace copy has expired since.
        return new ProxyResolveMissingKeyError(
          `key ${key} of store ${this.name} was ${explainConsumer(consumedBy)}: by an earlier resolve of this very proxy, whose reply was lost; ` +
            `its grace copy is kept ${CONSUME_GRACE_MS / 1000} s and has expired, so the value is gone`,
          { key, consumedBy },
        );
      }
      // This process consumed it through another proxy (of the same ref): the
      // one whose resolve failed unclearly still gets it, within the grace.
      const here = consumedBy.pid === process.pid && consumedBy.host === hostname()
        ? `; that is this process: if a resolve of another proxy of this ref failed here without saying whether it consumed the object, resolve that same proxy again (within ${CONSUME_GRACE_MS / 1000} s) to get it`
        : '';
      const why = consumedBy.reads !== undefined ? 'its budget of consuming reads is spent' : 'an ephemeral proxy resolves once';
      return new ProxyResolveMissingKeyError(`key ${key} of store ${this.name} was ${explainConsumer(consumedBy)} (${why})${here}`, {
        key,
        consumedBy,
      });
    }
    return new ProxyResolveMissingKeyError(
      `key ${key} is missing from store ${this.name} (namespace ${this.namespace}): it was evicted, expired, or never stored`,
      { key },
    );
  }

  /**
   * `consume`: whether resolving the proxy's ref consumes (evict, or reads),
   * and the object's reads budget when it has one (2 or more; the ref
   * carries it).
   */
  private proxyOf<T>(
    key: string,
    shape: Shape,
    consume: { evict: boolean; reads?: number | undefined },
    deserializer: Deserializer | undefined,
    target?: { value: unknown },
  ): Proxy<T> {
    return makeProxy<T>({
      storeName: this.name,
      namespace: this.namespace,
      key,
      shape,
      evict: consume.evict,
      ...(consume.reads !== undefined && consume.reads > 1 ? { reads: consume.reads } : {}),
      source: this,
      ...(deserializer ? { deserializer } : {}),
      ...(target ? { target } : {}),
      toRef,
    });
  }

  /** Whether a proxy made with these options consumes when its ref is resolved, and its budget. */
  private static consuming(options: { evict?: boolean; reads?: number }, rules: CheckedRules): { evict: boolean; reads: number } {
    return { evict: options.evict === true || options.reads !== undefined, reads: rules.reads };
  }

  /**
   * Store a value and return a proxy of it. With `populateTarget` (the
   * default) the proxy is already resolved here; with `evict: true` the
   * object is consumed by the first resolve of the proxy's ref.
   *
   * @throws {@link NonProxiableTypeError} for null, undefined and booleans (unless `skipNonproxiable`).
   * @example
   * ```ts
   * const p = await store.proxy([1, 2, 3]);
   * p.length; // 3
   * const ref = toRef(p); // send this
   * ```
   */
  async proxy<T>(value: T, options: ProxyOptions = {}): Promise<ProxyOf<T>> {
    return this.proxyChecked('store.proxy', value, options);
  }

  private async proxyChecked<T>(where: string, value: T, options: ProxyOptions): Promise<ProxyOf<T>> {
    checkOptions(where, options, PROXY_OPTIONS);
    const rules = this.rulesOf(where, options);
    if (isNonProxiable(value)) {
      if (options.skipNonproxiable) return value as ProxyOf<T>;
      throw nonProxiable(value);
    }
    const key = await this.putChecked(value, { lifetime: options.lifetime, serializer: options.serializer }, rules);
    return this.proxyOf<T>(
      key,
      shapeOf(value),
      Store.consuming(options, rules),
      options.deserializer,
      (options.populateTarget ?? this.populateTarget) ? { value } : undefined,
    ) as ProxyOf<T>;
  }

  /**
   * Proxies of many values, stored in one round trip.
   *
   * @example
   * ```ts
   * const [a, b] = await store.proxyBatch([[1], [2]]);
   * ```
   */
  async proxyBatch<T>(values: T[], options: ProxyOptions = {}): Promise<ProxyOf<T>[]> {
    checkOptions('store.proxyBatch', options, PROXY_OPTIONS);
    const rules = this.rulesOf('store.proxyBatch', options);
    if (!Array.isArray(values)) throw new InvalidOptionsError('proxyBatch takes an array of values');
    const proxiable: T[] = [];
    for (const value of values) {
      if (isNonProxiable(value)) {
        if (!options.skipNonproxiable) {
          throw nonProxiable(value);
        }
      } else {
        proxiable.push(value);
      }
    }
    const keys = await this.measure('putBatch', () => this.putMany(proxiable, { lifetime: options.lifetime, serializer: options.serializer }, rules));
    const populate = options.populateTarget ?? this.populateTarget;
    const consume = Store.consuming(options, rules);
    let i = 0;
    return values.map((value) => {
      if (isNonProxiable(value)) return value as ProxyOf<T>;
      const key = keys[i++] as string;
      return this.proxyOf<T>(key, shapeOf(value), consume, options.deserializer, populate ? { value } : undefined) as ProxyOf<T>;
    });
  }

  /**
   * A proxy of an object already in the store. Reads only the stored header
   * (to learn the target's shape), never the object; a missing key gives a
   * proxy whose resolve throws {@link ProxyResolveMissingKeyError}.
   *
   * @example
   * ```ts
   * const p = await store.proxyFromKey<number[]>(key);
   * await resolve(p);
   * ```
   */
  async proxyFromKey<T>(key: string, options: ProxyFromKeyOptions = {}): Promise<Proxy<T>> {
    checkOptions('store.proxyFromKey', options, PROXY_FROM_KEY_OPTIONS);
    this.checkOpen('proxyFromKey');
    validateKey(key);
    if (options.evict && isDedupeKey(key)) throw cannotConsume(key);
    const lifetime = options.lifetime === undefined ? undefined : checkLifetime(options.lifetime);
    // Both commands go out together: one round trip.
    const [header] = await Promise.all([
      this.connector.getPrefix(key, 3),
      lifetime === undefined ? undefined : lifetime[kLifetimeAddKeys](this, [key]),
    ]);
    const shape = (header && peekShape(header)) || 'object';
    return this.proxyOf<T>(key, shape, { evict: options.evict ?? false }, options.deserializer);
  }

  /**
   * A proxy inside a {@link ProxyLocker}, so nothing resolves it by accident.
   *
   * @example
   * ```ts
   * const locker = await store.lockedProxy([1, 2, 3]);
   * const p = locker.unlock();
   * ```
   */
  async lockedProxy<T>(value: T, options: ProxyOptions = {}): Promise<T extends NonProxiable ? T : ProxyLocker<T>> {
    const proxy = await this.proxyChecked('store.lockedProxy', value, options);
    if (isNonProxiable(proxy)) return proxy as T extends NonProxiable ? T : ProxyLocker<T>;
    return new ProxyLocker<T>(proxy as Proxy<T>) as T extends NonProxiable ? T : ProxyLocker<T>;
  }

  /**
   * Store a value with one owner, enforcing ProxyStore's ownership and
   * borrowing rules in Redis (see `borrow`, `mutBorrow`, `drop`). The owner's
   * process renews its lease; the object is evicted by `drop`, by the
   * handle's garbage collection, or when its leases run out. With
   * `lifetime`, the lifetime bounds the owner: at its end the handle becomes
   * invalid and the object is evicted (when its last borrow ends, if it is
   * borrowed then). One round trip.
   *
   * @throws {@link InvalidOptionsError} with `evict`, `reads` or `ttl` (owned objects do not combine with them).
   * @throws {@link LifetimeEndedError} when `lifetime` has ended.
   * @throws {@link NonProxiableTypeError} for null, undefined and booleans (unless `skipNonproxiable`).
   * @example
   * ```ts
   * const owned = await store.ownedProxy([1, 2, 3]);
   * const shared = await borrow(owned);
   * await release(shared);
   * await drop(owned);
   * ```
   */
  async ownedProxy<T>(value: T, options: OwnedProxyOptions = {}): Promise<OwnedProxyOf<T>> {
    checkOptions('store.ownedProxy', options, OWNED_PROXY_OPTIONS);
    if ((options as { dedupe?: unknown }).dedupe !== undefined) {
      throw new InvalidOptionsError(
        'store.ownedProxy takes no `dedupe`: an owned object has one owner, a deduped one is shared by every put of equal bytes ' +
          '(own a copy: ownedProxy(value), or share it: proxy(value, { dedupe: true }))',
      );
    }
    this.checkOpen('ownedProxy');
    if (isNonProxiable(value)) {
      if (options.skipNonproxiable) return value as OwnedProxyOf<T>;
      throw nonProxiable(value);
    }
    return (await createOwnedProxy(this, value, options)) as OwnedProxyOf<T>;
  }

  /**
   * A future: a key whose value one process sets later (`setResult`) and
   * others wait for (`result()`, or resolving `future.proxy()`), in any
   * process (`toRef(future)`, `Future.fromRef`). Waiting blocks in Redis and
   * wakes within one round trip of the set; it never polls. The result
   * takes the object rules of `put`: `evict`/`reads` (consumed once / n
   * times by `result()` or proxy resolves), `ttl` (counted from the set,
   * else the store's `defaultTtl` when there is no lifetime), `lifetime` (a
   * lifetime that ends before the set wakes the waiters with
   * {@link LifetimeEndedError}). `timeout` (seconds) is the default of every
   * wait on it, in every process. One round trip with a lifetime (it joins
   * it now), none without.
   *
   * @example
   * ```ts
   * const future = await store.future<number[]>({ timeout: 60 });
   * await queue.add('compute', { out: toRef(future) }); // a worker sets it
   * const values = await future.result();
   * ```
   */
  async future<T = unknown>(options: FutureOptions = {}): Promise<Future<T>> {
    checkOptions('store.future', options, FUTURE_OPTIONS);
    const rules = checkFutureRules('store.future', options);
    const serializer = checkFunction<Serializer>('store.future: serializer', options.serializer);
    const deserializer = checkFunction<Deserializer>('store.future: deserializer', options.deserializer);
    if (rules.ttl === undefined && options.lifetime === undefined) rules.ttl = this.defaultTtl;
    this.checkOpen('future');
    let key: string;
    if (options.lifetime !== undefined) {
      key = await checkLifetime(options.lifetime)[kLifetimeFuture](this);
    } else {
      key = this.connector.newKey();
    }
    return new Future<T>({ host: this, storeName: this.name, namespace: this.namespace, key }, rules, { serializer, deserializer });
  }

  /** @internal Run `hook` when the store closes (StaticLifetime objects, renewals). */
  onClose(hook: () => Promise<void>): void {
    this.closeHooks.push(hook);
  }

  /**
   * Close the store: run its close hooks (the ContextLifetimes made through
   * it that are still open are closed, its StaticLifetime objects are
   * evicted; leases are left to their lease), unregister it, and close its
   * connector (which closes the Redis client only if the connector created
   * it). Idempotent.
   *
   * @example
   * ```ts
   * await store.close();
   * ```
   */
  close(options: { closeConnector?: boolean } = {}): Promise<void> {
    try {
      checkOptions('store.close', options, CLOSE_OPTIONS);
    } catch (err) {
      return Promise.reject(err);
    }
    if (!this.closing) {
      this.closing = (async () => {
        const errors: unknown[] = [];
        for (const hook of this.closeHooks.splice(0)) {
          try {
            await hook();
          } catch (err) {
            errors.push(err);
          }
        }
        unregisterClosed(this);
        this.cache?.close();
        if (options.closeConnector ?? true) await this.connector.close();
        if (errors.length > 0) throw errors[0];
      })();
    }
    return this.closing;
  }

  /** `await using store = new Store(...)` closes the store at the end of the block. */
  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }

  /**
   * The configuration to rebuild this store elsewhere ({@link Store.fromConfig}):
   * JSON-safe, with the connector's address and non-secret options, never a
   * password or TLS key (see {@link RedisConnector.config}). Serializer
   * functions are not part of it.
   *
   * @example
   * ```ts
   * const text = JSON.stringify(store.config()); // safe to log or send
   * ```
   */
  config(): StoreConfig {
    return {
      name: this.name,
      connector: this.connector.config(),
      register: this.registered,
      cacheSize: this.cacheSize,
      populateTarget: this.populateTarget,
      leaseTtl: this.leaseTtl,
      tombstoneTtl: this.tombstoneTtl,
      metrics: this.recorder !== undefined,
      ...(this.defaultTtl !== undefined ? { defaultTtl: this.defaultTtl } : {}),
      chunkSize: this.chunkSize,
    };
  }

  /**
   * A store from {@link Store.config}. A config carries no password: give it
   * here (`{ password }`), or in the environment variable
   * `PROXYSTORE_REDIS_PASSWORD`; TLS options with keys or a private CA go in
   * `redisOptions`.
   *
   * @example
   * ```ts
   * const copy = Store.fromConfig(store.config(), { password: process.env.REDIS_PASSWORD });
   * ```
   */
  static fromConfig(config: StoreConfig, options: StoreFromConfigOptions = {}): Store {
    if (typeof config !== 'object' || config === null || typeof config.name !== 'string') {
      throw new InvalidOptionsError(`not a Store config: ${JSON.stringify(config)}`);
    }
    checkOptions('Store.fromConfig', options, FROM_CONFIG_OPTIONS);
    const { serializer, deserializer, ...connection } = options;
    const connector = RedisConnector.fromConfig(config.connector, connection);
    try {
      return new Store(config.name, connector, {
        register: config.register,
        cacheSize: config.cacheSize,
        populateTarget: config.populateTarget,
        leaseTtl: config.leaseTtl,
        tombstoneTtl: config.tombstoneTtl,
        metrics: config.metrics ?? false,
        ...(config.defaultTtl !== undefined ? { defaultTtl: config.defaultTtl } : {}),
        ...(config.chunkSize !== undefined ? { chunkSize: config.chunkSize } : {}),
        ...(serializer ? { serializer } : {}),
        ...(deserializer ? { deserializer } : {}),
      });
    } catch (err) {
      void connector.close();
      throw err;
    }
  }
}

/** Environment variable: the Redis URL a process uses to resolve refs when it has no store of their name registered. */
export const ENV_URL = 'PROXYSTORE_REDIS_URL';
/** Environment variable: the namespace of the store built from {@link ENV_URL}. */
export const ENV_NAMESPACE = 'PROXYSTORE_REDIS_NAMESPACE';

/**
 * Find the store for a proxy revived from a ref: the registered store of the
 * ref's name, or one built from PROXYSTORE_REDIS_URL and
 * PROXYSTORE_REDIS_NAMESPACE (and then registered). Never from anything
 * inside the ref but the name.
 */
function storeFor(state: Pick<ProxyState, 'storeName' | 'namespace' | 'key' | 'source'>): Store {
  const store = getStore(state.storeName);
  if (store) {
    if (store.namespace !== state.namespace) throw otherNamespace(state, store.namespace);
    return store;
  }
  // The proxy's own store, or the registered store of its name, was closed
  // here: say so, rather than "not registered" or opening a new connection.
  const closed = state.source instanceof Store && state.source.isClosed ? { namespace: state.source.namespace } : closedStore(state.storeName);
  if (closed) {
    throw new StoreClosedError(
      `store ${JSON.stringify(state.storeName)} (namespace ${closed.namespace}) was closed in this process: cannot resolve key ${state.key}; ` +
        'register a new store of that name to resolve it',
      { key: state.key },
    );
  }
  const url = process.env[ENV_URL];
  const namespace = process.env[ENV_NAMESPACE];
  if (!url || !namespace) {
    throw new ProxyStoreFactoryError(
      `no store named ${JSON.stringify(state.storeName)} is registered in this process to resolve key ${state.key}: ` +
        `create it with { register: true }, or set ${ENV_URL} and ${ENV_NAMESPACE}`,
      { key: state.key },
    );
  }
  // Checked before the store is built: a ref of another namespace must not
  // make this process open (and keep) a connection under a name it chose.
  if (namespace !== state.namespace) throw otherNamespace(state, namespace);
  // Made on demand: its idle connection must not keep the process alive, since
  // nobody here knows to close it (a serverless handler, a script).
  const connector = new RedisConnector({ url, namespace, unrefWhenIdle: true });
  try {
    return new Store(state.storeName, connector, { register: true });
  } catch (err) {
    void connector.close();
    throw err;
  }
}

function otherNamespace(state: Pick<ProxyState, 'storeName' | 'namespace' | 'key'>, namespace: string): ProxyStoreFactoryError {
  return new ProxyStoreFactoryError(
    `ref for key ${state.key} belongs to namespace ${JSON.stringify(state.namespace)}, but store ${JSON.stringify(state.storeName)} here uses namespace ${JSON.stringify(namespace)}: refused`,
    { key: state.key },
  );
}

setStoreLookup(storeFor);
setFutureHostLookup((storeName, namespace, key) => storeFor({ storeName, namespace, key, source: undefined }));

/**
 * @internal The store of a proxy: the open store that made or resolved it,
 * else the one {@link storeFor} finds (StaticLifetime.addProxy needs it, as
 * ProxyStore's `factory.get_store()`).
 */
export function storeOfProxy(state: ProxyState): Store {
  if (state.source instanceof Store && !state.source.isClosed) return state.source;
  return storeFor(state);
}
