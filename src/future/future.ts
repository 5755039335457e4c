/**
 * Futures: a key whose value does not exist yet. One process sets it
 * (`setResult`, lua/futureSet.lua: the value and the wake-up signal in one
 * script), any other waits for it (`result`, or the proxy's `resolve`),
 * blocked in Redis (./pool.ts), never polling.
 *
 * This module sits below the store: it reaches its store through the narrow
 * {@link FutureHost} interface, which `Store` implements.
 *
 * @module
 */
import { dropStaged, scriptValue, type ChunkWriter } from '../chunks/put.js';
import { addExtension } from 'msgpackr';
import {
  FutureTimeoutError,
  InvalidOptionsError,
  InvalidRefError,
  LifetimeEndedError,
  ProxyResolveMissingKeyError,
  StoreClosedError,
} from '../errors.js';
import { randomId, tagOf, validateKey, type KeySpace } from '../keys.js';
import { checkNumber, checkOptions } from '../options.js';
import { makeProxy, type Proxy, type ResolveOptions } from '../proxy/proxy.js';
import { REF_MARKER, setFutureRefs, toRef as proxyToRef } from '../proxy/refs.js';
import type { Scripts, ScriptKeys } from '../redis/scripts.js';
import type { Deserializer, Serializer } from '../serialize.js';
import type { Lifetime } from '../lifetimes/lifetime.js';
import { existingPool, poolOf, type BlockingSource, type SignalEntry } from './pool.js';

/** What a future needs of its connector. */
export interface FutureConnector extends BlockingSource, ChunkWriter {
  readonly keys: KeySpace;
  readonly scripts: Scripts;
  /** The bound of the connector's pool of blocking connections. */
  readonly maxBlockingConnections: number;
  dataKey(key: string): string;
  get(key: string): Promise<Buffer | undefined>;
  /** The error `get` would reject with before sending anything (a server too old), else undefined. */
  refusal(operation: string, context: { key?: string }): Error | undefined;
  checkFits(values: readonly Uint8Array[], operation: string): Promise<void>;
  command<T>(operation: string, context: { key?: string }, send: () => Promise<T>): Promise<T>;
}

/** What a future needs of its store (`Store` implements it). */
export interface FutureHost {
  readonly name: string;
  readonly namespace: string;
  readonly isClosed: boolean;
  readonly tombstoneTtl: number;
  /** Bytes per chunk of a large result (src/chunks/). */
  readonly chunkSize: number;
  readonly connector: FutureConnector;
  checkOpen(operation: string): void;
  encode(value: unknown, serializer: Serializer | undefined): Buffer;
  /** The stored bytes as parts: a large binary value's header and its own memory (see `Store.encodeParts`). */
  encodeParts(value: unknown, serializer: Serializer | undefined): Buffer | Uint8Array[];
  decode(bytes: Buffer, key: string, deserializer: Deserializer | undefined): unknown;
  resolveTarget(key: string, options: ResolveOptions): Promise<unknown>;
  onClose(hook: () => Promise<void>): void;
}

/** Options of `store.future()`. */
export interface FutureOptions {
  /** Evict the result when this lifetime ends; a lifetime that ends before the set wakes the waiters with LifetimeEndedError. */
  lifetime?: Lifetime;
  /** The result is consumed by the first `result()` (or proxy resolve) anywhere; `reads: 1`. */
  evict?: boolean;
  /** The result may be consumed this many times (a positive integer), as `put`'s `reads`. */
  reads?: number;
  /** Seconds the result lives once set (from 0.001 to 5,000,000,000), as `put`'s `ttl`. */
  ttl?: number;
  /**
   * Default `timeout` (seconds) of `result()` and of the proxy's resolve,
   * in every process the future or its proxy goes to (it travels in the
   * ref). Default: wait until the result comes.
   */
  timeout?: number;
  /** Serializer of the result (this process's `setResult`). */
  serializer?: Serializer;
  /** Deserializer of the result (this process's `result()`). */
  deserializer?: Deserializer;
}

/** Options of {@link Future.result}. */
export interface FutureResultOptions {
  /** Seconds to wait (0 to 2,147,483: Node's longest timer); then {@link FutureTimeoutError}. Default: the future's `timeout`, else no limit. */
  timeout?: number;
  /** Stops the wait; the promise rejects with the signal's `reason` (an `AbortError` by default). */
  signal?: AbortSignal;
}

/** A future in transit: plain, JSON-safe, without credentials (see {@link Future.fromRef}). */
export interface FutureRef {
  [REF_MARKER]: 1;
  kind: 'future';
  /** Name of the store that serves it in the receiving process. */
  store: string;
  namespace: string;
  key: string;
  /** The result is consumed once (`reads: 1`) or `reads` times. */
  evict?: true;
  reads?: number;
  /** The result's ttl (seconds), for a `setResult` in the receiving process. */
  ttl?: number;
  /** Default wait timeout (seconds). */
  timeout?: number;
}

/** @internal The checked options a future carries. */
export interface FutureRules {
  /** 1: no rules record (consumed once if `consuming`, else never). */
  reads: number;
  consuming: boolean;
  ttl: number | undefined;
  timeout: number | undefined;
}

const RESULT_OPTIONS = ['timeout', 'signal'] as const;
/** Node's longest timer, in seconds. */
const TIMEOUT = { unit: 'seconds', min: 0, max: Math.floor((2 ** 31 - 1) / 1000) };
const TTL = { unit: 'seconds', min: 0.001, max: 5_000_000_000 };
const READS = { min: 1, max: 1_000_000_000, integer: true };
/** Results up to this size that are not consumed travel inside the signal entry: a woken waiter needs no GET. */
const INLINE_MAX_BYTES = 16 * 1024;
/** How long a signal entry lives at least (it serves wake-ups and "already set"). */
const MIN_SIGNAL_TTL_MS = 60_000;

/** @internal Check a timeout in seconds. */
export function checkTimeout(where: string, timeout: unknown): number | undefined {
  return timeout === undefined ? undefined : checkNumber(`${where}: timeout`, timeout, TIMEOUT);
}

/** @internal Check `evict`, `reads`, `ttl` and `timeout` of `store.future()` (or of a ref). */
export function checkFutureRules(where: string, options: { evict?: unknown; reads?: unknown; ttl?: unknown; timeout?: unknown }): FutureRules {
  if (options.evict !== undefined && typeof options.evict !== 'boolean') {
    throw new InvalidOptionsError(`${where}: evict must be a boolean, got ${options.evict === null ? 'null' : typeof options.evict}`);
  }
  const reads = options.reads === undefined ? 1 : checkNumber(`${where}: reads`, options.reads, READS);
  if (options.reads !== undefined && options.evict === false) {
    throw new InvalidOptionsError(`${where}: reads makes the result consumed, so evict: false contradicts it (evict: true is reads: 1; give one of them)`);
  }
  return {
    reads,
    consuming: options.evict === true || options.reads !== undefined,
    ttl: options.ttl === undefined ? undefined : checkNumber(`${where}: ttl`, options.ttl, TTL),
    timeout: checkTimeout(where, options.timeout),
  };
}

/** Finds the store of a future revived from a ref; set by the store module. */
let hostLookup: ((storeName: string, namespace: string, key: string) => FutureHost) | undefined;

/** @internal */
export function setFutureHostLookup(lookup: (storeName: string, namespace: string, key: string) => FutureHost): void {
  hostLookup = lookup;
}

/** How long after its lifetime's expiry a wait looks again: Redis then reports the meta key gone. */
const LEASE_END_MARGIN_MS = 20;
/** The end of a wait bounded by its lifetime's expiry (not an error anyone sees). */
const LEASE_END = new Error('lease end');

/** Hosts whose close rejects their waits (hooked once each). */
const hooked = new WeakSet<FutureHost>();

function closedError(host: FutureHost, key: string): StoreClosedError {
  return new StoreClosedError(`store ${host.name} was closed while waiting for future ${key}: the wait ends without a result`, { key });
}

/** The Redis keys lua/futureSet.lua takes for `key`. */
function setKeys(connector: FutureConnector, key: string): ScriptKeys<'futureSet'> {
  const data = connector.dataKey(key);
  const prefix = data.slice(0, data.indexOf('}:d:') + 2);
  return {
    data,
    rules: connector.keys.object('rules', key),
    tombstone: connector.keys.object('tomb', key),
    signal: connector.keys.object('sig', key),
    meta: `${prefix}lt`,
    members: `${prefix}members`,
    futures: `${prefix}futures`,
    ends: `${prefix}ends`,
    stage: data,
  };
}

/**
 * @internal Wait for the result of `key` and read it (consuming it when
 * `read.evict`). A consuming read first runs its consume script (a result
 * that is there is taken at once), then blocks on the signal, then consumes.
 * A plain read sends its GET on the blocking connection, in the same write
 * as the XREAD that waits (the pool's probe): a result that is there comes
 * back from the GET, one that is not wakes the XREAD, one round trip either
 * way. (Under a lifetime the GET goes first, on its own, as the lease
 * checks below need.) `timeoutMs` counts from the call.
 */
export async function awaitResult(
  host: FutureHost,
  key: string,
  read: ResolveOptions,
  wait: { timeoutMs?: number | undefined; signal?: AbortSignal | undefined },
): Promise<unknown> {
  const started = Date.now();
  const plain: ResolveOptions = { evict: read.evict };
  if (read.deserializer) plain.deserializer = read.deserializer;
  if (read.consumeToken !== undefined) plain.consumeToken = read.consumeToken;
  const connector = host.connector;
  const lifetimeMeta = key.includes('~') ? connector.keys.lifetime('lt', tagOf(key)) : undefined;
  // The plain read of a future outside a lifetime rides on the wait (see above).
  let probe = !read.evict && lifetimeMeta === undefined ? connector.dataKey(key) : undefined;
  if (read.evict) {
    // One consume script: the value, or missing with its tombstone.
    try {
      return await host.resolveTarget(key, plain);
    } catch (err) {
      // Missing and never consumed: not set yet. (Consumed: the result was taken.)
      if (!(err instanceof ProxyResolveMissingKeyError) || err.consumedBy !== undefined) throw err;
    }
  } else if (probe === undefined) {
    // One GET; a missing result is not an error yet (the store's read would also look for a tombstone).
    const bytes = await connector.get(key);
    if (bytes !== undefined) return host.decode(bytes, key, read.deserializer);
  } else {
    // What connector.get refuses (a server too old) is refused here too.
    const refusal = connector.refusal('GET', { key });
    if (refusal) throw refusal;
  }
  if (!hooked.has(host)) {
    hooked.add(host);
    host.onClose(async () => existingPool(connector)?.rejectOwner(host));
  }
  const ended = () =>
    new LifetimeEndedError(`future ${key} of store ${host.name} belongs to a lifetime that ended before it was set: it will never have a result`, {
      key,
    });
  // A lifetime whose lease runs out with nobody closing it writes no signal: its keys just
  // expire. So a wait under a lifetime with an expiry blocks until that expiry at the latest,
  // then looks again (an extended lease: wait on; gone: ended). One PEXPIRETIME per lease end.
  let entry: SignalEntry;
  for (;;) {
    const timeoutMs = wait.timeoutMs === undefined ? undefined : Math.max(0, wait.timeoutMs - (Date.now() - started));
    let leaseMs: number | undefined;
    if (lifetimeMeta !== undefined) {
      const at = await connector.command('PEXPIRETIME', { key }, () => connector.client.call('PEXPIRETIME', lifetimeMeta) as Promise<number>);
      if (at === -2) throw ended();
      if (at >= 0) leaseMs = Math.max(0, at - Date.now()) + LEASE_END_MARGIN_MS;
    }
    const byLease = leaseMs !== undefined && (timeoutMs === undefined || leaseMs < timeoutMs);
    try {
      entry = await poolOf(connector, connector.maxBlockingConnections).wait(connector.keys.object('sig', key), {
        timeoutMs: byLease ? leaseMs : timeoutMs,
        signal: wait.signal,
        owner: host,
        probe,
        timeoutError: () =>
          byLease
            ? LEASE_END
            : new FutureTimeoutError(
                `future ${key} of store ${host.name} has no result after ${((wait.timeoutMs ?? 0) / 1000).toFixed(3)} s: ` +
                  'nothing was consumed; wait again, or give a longer timeout',
                { key },
              ),
        closedError: () => closedError(host, key),
      });
    } catch (err) {
      if (err !== LEASE_END) throw err;
      continue;
    }
    if (entry.state !== 'unknown') break;
    // The probe failed (a connection lost, a slot moved): the usual GET says, then wait again without a probe.
    probe = undefined;
    const bytes = await connector.get(key);
    if (bytes !== undefined) return host.decode(bytes, key, read.deserializer);
  }
  if (entry.state === 'ended') throw ended();
  if (entry.value !== undefined && !read.evict) return host.decode(entry.value, key, read.deserializer);
  return host.resolveTarget(key, plain);
}

/**
 * A value that one process sets and others wait for (ProxyStore's
 * `Future`). Made by `store.future()`; moved to another process with
 * `toRef(future)` and {@link Future.fromRef}, or inside any stored object or
 * JSON text (`proxyReviver`). Waiting never polls: it blocks in Redis and
 * wakes within one round trip of the set.
 *
 * @example
 * ```ts
 * const future = await store.future<number[]>();
 * worker.postMessage(toRef(future)); // the worker calls future.setResult(...)
 * const result = await future.result({ timeout: 30 });
 * ```
 */
export class Future<T = unknown> {
  /** The store key the result is stored under. */
  readonly key: string;
  /** The name of the store that serves it. */
  readonly storeName: string;
  /** That store's namespace. */
  readonly namespace: string;
  private readonly rules: FutureRules;
  private host: FutureHost | undefined;
  private readonly serializer: Serializer | undefined;
  private readonly deserializer: Deserializer | undefined;
  /** This handle's consumer token (made at its first consuming read): a consume whose reply was lost is recognised when this handle asks again. */
  private token: string | undefined;

  /** @internal Use `store.future()` or {@link Future.fromRef}. */
  constructor(
    where: { host?: FutureHost; storeName: string; namespace: string; key: string },
    rules: FutureRules,
    codec: { serializer?: Serializer | undefined; deserializer?: Deserializer | undefined } = {},
  ) {
    this.key = where.key;
    this.storeName = where.storeName;
    this.namespace = where.namespace;
    this.host = where.host;
    this.rules = rules;
    this.serializer = codec.serializer;
    this.deserializer = codec.deserializer;
  }

  private store(operation: string): FutureHost {
    if (this.host === undefined || this.host.isClosed) {
      if (!hostLookup) throw new InvalidRefError(`future ${this.key}: no store module loaded`);
      this.host = hostLookup(this.storeName, this.namespace, this.key);
    }
    this.host.checkOpen(operation);
    return this.host;
  }

  /**
   * Set the result, once: the value and the wake-up signal are written in
   * one script, so every waiter, in any process, wakes with the value there.
   * A resend of this call after a lost reply is recognised (one token per
   * call) and changes nothing.
   *
   * @throws {@link FutureAlreadySetError} when the future has a result already (nothing is changed).
   * @throws {@link LifetimeEndedError} when the future's lifetime ended.
   * @example
   * ```ts
   * await Future.fromRef<number>(ref).setResult(42);
   * ```
   */
  async setResult(value: T): Promise<void> {
    const host = this.store('future.setResult');
    // A large Buffer or typed array comes as parts (its own memory, no copy of the payload).
    const encoded = host.encodeParts(value, this.serializer);
    const connector = host.connector;
    const bytes = Buffer.isBuffer(encoded) && encoded.length <= host.chunkSize ? encoded : undefined;
    if (bytes) await connector.checkFits([bytes], 'future.setResult');
    const inline = !this.rules.consuming && bytes !== undefined && bytes.length <= INLINE_MAX_BYTES;
    // Over chunkSize: chunks staged first, renamed in by the script (src/chunks/).
    const v = bytes ? { stage: connector.dataKey(this.key), value: bytes, staged: undefined } : await scriptValue(connector, this.key, encoded, host.chunkSize);
    try {
      await connector.scripts.run(
        'futureSet',
        { ...setKeys(connector, this.key), stage: v.stage },
        {
          value: v.value,
          reads: this.rules.reads,
          ttlMs: this.rules.ttl === undefined ? 0 : Math.max(1, Math.round(this.rules.ttl * 1000)),
          signalTtlMs: Math.max(MIN_SIGNAL_TTL_MS, Math.round(host.tombstoneTtl * 1000)),
          token: randomId(),
          inline: inline ? 1 : 0,
        },
        { key: this.key },
      );
    } catch (err) {
      if (v.staged) await dropStaged(connector, [v.staged]);
      throw err;
    }
  }

  /**
   * Wait for the result and return it (consuming it, for a future made with
   * `evict` or `reads`). The read and the wait go together, in one round
   * trip on a connection of the store's pool: a result that is already
   * there comes back at once; otherwise the wait blocks in Redis and wakes
   * within one round trip of the set.
   *
   * @throws {@link FutureTimeoutError} after `timeout` seconds (the connection is freed, nothing consumed).
   * @throws the signal's `reason` when `signal` aborts.
   * @throws {@link LifetimeEndedError} when the future's lifetime ended before it was set.
   * @throws {@link StoreClosedError} when the store closes during the wait.
   * @throws {@link ProxyResolveMissingKeyError} when the result was consumed by another (evict, reads) or expired (ttl).
   * @example
   * ```ts
   * const value = await future.result({ timeout: 10, signal: AbortSignal.timeout(60_000) });
   * ```
   */
  async result(options: FutureResultOptions = {}): Promise<T> {
    checkOptions('future.result', options, RESULT_OPTIONS);
    const timeout = options.timeout === undefined ? this.rules.timeout : checkTimeout('future.result', options.timeout);
    if (options.signal !== undefined && !(options.signal instanceof AbortSignal)) {
      throw new InvalidOptionsError('future.result: signal must be an AbortSignal');
    }
    const host = this.store('future.result');
    const read: ResolveOptions = { evict: this.rules.consuming };
    if (this.rules.consuming) read.consumeToken = this.token ??= randomId();
    if (this.deserializer) read.deserializer = this.deserializer;
    return (await awaitResult(host, this.key, read, {
      timeoutMs: timeout === undefined ? undefined : Math.round(timeout * 1000),
      signal: options.signal,
    })) as T;
  }

  /**
   * Whether the future has its result (or ended with its lifetime), as
   * Redis sees it now; one round trip, never blocks.
   *
   * @example
   * ```ts
   * if (await future.done()) console.log(await future.result());
   * ```
   */
  async done(): Promise<boolean> {
    const host = this.store('future.done');
    const connector = host.connector;
    const signal = connector.keys.object('sig', this.key);
    const data = connector.dataKey(this.key);
    // Same slot: one EXISTS, also on a Cluster.
    const n = await connector.command('EXISTS', { key: this.key }, () => connector.client.exists(signal, data));
    return n > 0;
  }

  /**
   * A proxy of the result: resolving it (here, or from its ref anywhere)
   * waits for the result, with the future's `timeout`; it consumes the
   * result when the future was made with `evict` or `reads`.
   *
   * @example
   * ```ts
   * const p = future.proxy();
   * queue.add('step-b', { input: toRef(p) }); // step B resolves it when it needs it
   * ```
   */
  proxy(): Proxy<T> {
    return makeProxy<T>({
      storeName: this.storeName,
      namespace: this.namespace,
      key: this.key,
      shape: 'object',
      evict: this.rules.consuming,
      ...(this.rules.consuming && this.rules.reads > 1 ? { reads: this.rules.reads } : {}),
      ...(this.host ? { source: this.host } : {}),
      ...(this.deserializer ? { deserializer: this.deserializer } : {}),
      future: this.rules.timeout === undefined ? {} : { timeout: this.rules.timeout },
      toRef: proxyToRef,
    });
  }

  /** The future's ref (what `toRef(future)` returns); `JSON.stringify(future)` writes it. */
  toJSON(): FutureRef {
    const ref: FutureRef = { [REF_MARKER]: 1, kind: 'future', store: this.storeName, namespace: this.namespace, key: this.key };
    if (this.rules.consuming) ref.evict = true;
    if (this.rules.consuming && this.rules.reads > 1) ref.reads = this.rules.reads;
    if (this.rules.ttl !== undefined) ref.ttl = this.rules.ttl;
    if (this.rules.timeout !== undefined) ref.timeout = this.rules.timeout;
    return ref;
  }

  /**
   * The future of a ref (from `toRef(future)`, JSON or msgpack), served by
   * this process's store of the ref's name (or one built from
   * PROXYSTORE_REDIS_URL), as a proxy's ref is. It can be set or awaited.
   *
   * @throws {@link InvalidRefError} for anything that is not a future's ref.
   * @example
   * ```ts
   * const future = Future.fromRef<number>(JSON.parse(message));
   * await future.setResult(42);
   * ```
   */
  static fromRef<T = unknown>(ref: FutureRef | unknown): Future<T> {
    const r = validateFutureRef(ref);
    let rules: FutureRules;
    try {
      rules = checkFutureRules('Future.fromRef', { evict: r.evict, reads: r.reads, ttl: r.ttl, timeout: r.timeout });
    } catch (err) {
      throw new InvalidRefError(`malformed future ref (key ${r.key}): ${(err as Error).message}`);
    }
    return new Future<T>({ storeName: r.store, namespace: r.namespace, key: r.key }, rules);
  }
}

/** Whether a value is a {@link Future}. */
export function isFuture(value: unknown): value is Future {
  return value instanceof Future;
}

/** Check that a value is a future's ref; throws {@link InvalidRefError} naming what is wrong. */
function validateFutureRef(value: unknown): FutureRef {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new InvalidRefError(`not a future ref: expected an object, got ${value === null ? 'null' : Array.isArray(value) ? 'an array' : typeof value}`);
  }
  const r = value as Record<string, unknown>;
  const problems: string[] = [];
  if (r[REF_MARKER] !== 1) problems.push(`\`${REF_MARKER}\` must be 1`);
  if (r.kind !== 'future') problems.push('`kind` must be "future" (a proxy\'s ref goes to fromRef)');
  if (typeof r.store !== 'string' || r.store.length === 0) problems.push('`store` must be a non-empty string');
  if (typeof r.namespace !== 'string' || r.namespace.length === 0) problems.push('`namespace` must be a non-empty string');
  try {
    validateKey(r.key);
  } catch {
    problems.push('`key` must be a non-empty string');
  }
  if (r.evict !== undefined && r.evict !== true) problems.push('`evict` must be true when present');
  if (problems.length > 0) {
    throw new InvalidRefError(`malformed future ref${typeof r.key === 'string' ? ` (key ${r.key})` : ''}: ${problems.join('; ')}`);
  }
  return value as FutureRef;
}

setFutureRefs({
  is: isFuture,
  toRef: (future) => (future as Future).toJSON(),
  fromRef: (ref) => Future.fromRef(ref),
});

/** msgpackr extension type of futures nested inside stored objects ('F'). */
export const FUTURE_EXTENSION_TYPE = 0x46;

addExtension({
  Class: Future,
  type: FUTURE_EXTENSION_TYPE,
  write: (future: Future) => future.toJSON(),
  read: (ref: unknown) => Future.fromRef(ref),
});
