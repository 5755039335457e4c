/**
 * The object cache of one store (DESIGN.md §7.3, store option `cacheSize`):
 * an LRU of decoded objects (and of the stored bytes of owned objects),
 * never stale beyond the time an invalidation takes to cross from Redis:
 *
 * - Entries are dropped when Redis announces that any key of the object
 *   (data, ownership record, leases, rules record) changed, was deleted,
 *   expired or evicted, by any process ({@link InvalidationTracker}).
 * - When a tracking connection drops, the whole cache is flushed and nothing
 *   is served or kept until every connection is back with tracking on.
 * - A read whose reply may predate an invalidation that arrived while it was
 *   in flight is returned to its caller but not kept (the classic race of
 *   client-side caching: the reply and the invalidation travel on two
 *   connections).
 * - This process's own writes drop their entries before the write returns
 *   (read-your-writes). Writes whose keys the client does not know (a
 *   lifetime's close) make the next lookup wait for a barrier: a PING on
 *   each tracking connection, whose PONG comes after every invalidation
 *   Redis sent before it.
 * - Versions: `update` bumps the object's version in its script and returns
 *   it, lease-checked handle reads return the version they read; the cache
 *   remembers the newest version this process has seen of each object and
 *   never serves or keeps an older one.
 *
 * @module
 */
import { RedisOperationError } from '../errors.js';
import { acquireTracker, releaseTracker, type InvalidationListener, type InvalidationTracker, type TrackedConnector } from './tracker.js';

/** The connector surface the cache needs. */
export interface CachedConnector extends TrackedConnector {
  /** The data key of a store key. */
  dataKey(key: string): string;
  /** Call `observer` after every write this process makes through the connector; returns the unsubscribe. */
  observeWrites(observer: WriteObserver): () => void;
}

/** A write this process made: its operation (a script name, `evict`, a batch), and its store key when it has one. */
export type WriteObserver = (operation: string, key: string | undefined) => void;

/** Counters of the cache, for `metrics()`. */
export interface CacheCounters {
  count(op: 'cacheHit' | 'cacheMiss' | 'cacheInvalidation', n?: number): void;
}

/**
 * Operations that never change or delete an existing object's data: reads,
 * writes of new keys, and changes of leases and records only. Every other
 * write drops the entry of its key (or, without a key, sets a barrier).
 */
const KEEPS_DATA: ReadonlySet<string> = new Set([
  'handleRead',
  'objectPut',
  'lifetimePut',
  'lifetimeCreate',
  'lifetimeAddKeys',
  'lifetimeExtend',
  'ownedCreate',
  'borrow',
  'mutBorrow',
  'renew',
  'clone',
  'intoOwned',
  'GET (batch)',
]);

/** Object key kinds whose change invalidates the object's entry (see src/keys.ts). */
const OBJECT_KINDS: ReadonlySet<string> = new Set(['d', 'own', 'lease', 'rules']);

/** How many object versions a process remembers (the newest seen of each). */
const SEEN_LIMIT = 65_536;

interface Entry {
  /** The decoded object (plain reads: the same object each time). */
  value?: unknown;
  hasValue: boolean;
  /** The stored bytes (handle reads: each resolve decodes its own copy). */
  bytes?: Buffer;
  /** The object's version, when the read returned one. */
  version: number | undefined;
}

/** A read in flight: kept only if nothing invalidated its key meanwhile. */
export interface Ticket {
  readonly dataKey: string;
  readonly seq: number;
  readonly epoch: number;
  readonly serving: boolean;
}

/** What a read brought back, to keep. */
export interface Fetched {
  value?: unknown;
  hasValue?: boolean;
  bytes?: Buffer;
  version?: number | undefined;
}

/** The cache of one store. */
export class ObjectCache implements InvalidationListener {
  private readonly entries = new Map<string, Entry>();
  /** Keys being read: the sequence number of the last invalidation of each. */
  private readonly inflight = new Map<string, { n: number; dirtyAt: number }>();
  private readonly seen = new Map<string, number>();
  private seq = 0;
  private flushedAt = 0;
  /** Writes of unknown keys made / covered by a barrier. */
  private bulkWrites = 0;
  private settledWrites = 0;
  private settling: Promise<void> | undefined;
  private tracker: InvalidationTracker | undefined;
  private unlisten: (() => void) | undefined;
  private readonly unobserve: () => void;
  private closed = false;

  constructor(
    readonly size: number,
    private readonly connector: CachedConnector,
    private readonly counters: CacheCounters | undefined,
  ) {
    this.unobserve = connector.observeWrites((operation, key) => this.wrote(operation, key));
  }

  /** The tracker, started at the first read. */
  private track(): InvalidationTracker {
    if (!this.tracker) {
      this.tracker = acquireTracker(this.connector);
      this.unlisten = this.tracker.listen(this);
      this.tracker.start();
    }
    return this.tracker;
  }

  /** Start tracking (opens the tracking connections in the background); idempotent. */
  start(): void {
    if (!this.closed) this.track();
  }

  /** Resolves once the cache may serve (true), or false after `timeoutMs`. */
  whenServing(timeoutMs: number): Promise<boolean> {
    if (this.closed) return Promise.resolve(false);
    return this.track().whenServing(timeoutMs);
  }

  /** Number of objects held. */
  get count(): number {
    return this.entries.size;
  }

  /** Whether `key` is held (and would be served). */
  has(key: string): boolean {
    return this.entries.has(this.connector.dataKey(key));
  }

  /**
   * Undefined when lookups may go ahead, else a promise to await first: a
   * write of unknown keys was made, so the invalidations it caused must be
   * in before anything is served (read-your-writes).
   */
  settle(): Promise<void> | undefined {
    if (this.bulkWrites === this.settledWrites || this.closed) return undefined;
    if (!this.settling) {
      const target = this.bulkWrites;
      const tracker = this.track();
      this.settling = (tracker.serving ? tracker.barrier() : Promise.reject(new Error('not tracking'))).then(
        () => {
          this.settledWrites = Math.max(this.settledWrites, target);
          this.settling = undefined;
        },
        () => {
          // Not tracking: everything was or will be flushed anyway.
          this.flush();
          this.settledWrites = Math.max(this.settledWrites, target);
          this.settling = undefined;
        },
      );
    }
    return this.settling;
  }

  /** The decoded object under `key`, when held and servable. */
  getValue(key: string): { value: unknown } | undefined {
    const entry = this.servable(key);
    return entry ? { value: entry.value } : undefined;
  }

  /**
   * The stored bytes of `key` and their version, when held: a handle read
   * sends the version to Redis, which answers with the bytes only if they
   * changed (lua/handleRead.lua), so these need no tracking to be used.
   * Counts nothing: {@link counted} does, once the read says.
   */
  peekBytes(key: string): { bytes: Buffer; version: number } | undefined {
    const dataKey = this.connector.dataKey(key);
    const entry = this.entries.get(dataKey);
    if (!entry || entry.bytes === undefined || entry.version === undefined) return undefined;
    this.entries.delete(dataKey);
    this.entries.set(dataKey, entry);
    return { bytes: entry.bytes, version: entry.version };
  }

  /** Count a validated read: a hit (the cached bytes were current) or a miss. */
  counted(hit: boolean): void {
    this.counters?.count(hit ? 'cacheHit' : 'cacheMiss');
  }

  /** The entry of `key` with a decoded value, when tracking vouches for it (counted as a hit or a miss). */
  private servable(key: string): Entry | undefined {
    const tracker = this.track();
    const dataKey = this.connector.dataKey(key);
    const entry = this.entries.get(dataKey);
    if (!entry || !entry.hasValue || !tracker.serving || this.bulkWrites !== this.settledWrites) {
      if (entry && !tracker.serving) this.flush();
      this.counters?.count('cacheMiss');
      return undefined;
    }
    const seen = this.seen.get(dataKey);
    if (seen !== undefined && entry.version !== undefined && entry.version < seen) {
      this.entries.delete(dataKey);
      this.counters?.count('cacheMiss');
      return undefined;
    }
    // Most recently used last.
    this.entries.delete(dataKey);
    this.entries.set(dataKey, entry);
    this.counters?.count('cacheHit');
    return entry;
  }

  /** Before reading `key` from Redis. */
  begin(key: string): Ticket {
    const tracker = this.track();
    const dataKey = this.connector.dataKey(key);
    const pending = this.inflight.get(dataKey);
    if (pending) pending.n++;
    else this.inflight.set(dataKey, { n: 1, dirtyAt: 0 });
    return { dataKey, seq: this.seq, epoch: tracker.epoch, serving: tracker.serving };
  }

  /** After the read of `ticket`: keep what it brought (when it may be kept). */
  end(ticket: Ticket, fetched?: Fetched): void {
    const pending = this.inflight.get(ticket.dataKey);
    const dirty = (pending !== undefined && pending.dirtyAt > ticket.seq) || this.flushedAt > ticket.seq;
    if (pending && --pending.n === 0) this.inflight.delete(ticket.dataKey);
    if (!fetched || this.closed || dirty || !ticket.serving) return;
    const tracker = this.tracker;
    if (!tracker || tracker.epoch !== ticket.epoch || !tracker.serving) return;
    const version = fetched.version;
    if (version !== undefined) {
      const seen = this.seen.get(ticket.dataKey);
      if (seen !== undefined && version < seen) return;
    }
    const old = this.entries.get(ticket.dataKey);
    const entry: Entry =
      old && old.version === version
        ? old
        : { hasValue: false, version };
    if (fetched.hasValue) {
      entry.value = fetched.value;
      entry.hasValue = true;
    }
    if (fetched.bytes !== undefined) entry.bytes = fetched.bytes;
    this.entries.delete(ticket.dataKey);
    this.entries.set(ticket.dataKey, entry);
    while (this.entries.size > this.size) {
      this.entries.delete(this.entries.keys().next().value as string);
    }
  }

  /**
   * This process saw `version` of `key` (its own update, or a read): older
   * entries go, and an older version read later is refused ({@link isOlder}).
   */
  sawVersion(key: string, version: number): void {
    const dataKey = this.connector.dataKey(key);
    const seen = this.seen.get(dataKey);
    if (seen !== undefined && seen >= version) return;
    this.seen.delete(dataKey);
    this.seen.set(dataKey, version);
    if (this.seen.size > SEEN_LIMIT) this.seen.delete(this.seen.keys().next().value as string);
    const entry = this.entries.get(dataKey);
    if (entry && entry.version !== undefined && entry.version < version) this.entries.delete(dataKey);
  }

  /** Whether `version` of `key` is older than one this process has seen. */
  isOlder(key: string, version: number): boolean {
    const seen = this.seen.get(this.connector.dataKey(key));
    return seen !== undefined && version < seen;
  }

  /** Drop `key` (a write of this process); reads of it in flight are not kept. */
  drop(key: string): void {
    this.dropData(this.connector.dataKey(key));
  }

  private dropData(dataKey: string): boolean {
    const pending = this.inflight.get(dataKey);
    if (pending) pending.dirtyAt = ++this.seq;
    return this.entries.delete(dataKey);
  }

  private wrote(operation: string, key: string | undefined): void {
    if (KEEPS_DATA.has(operation)) return;
    if (key !== undefined) this.drop(key);
    else this.bulkWrites++;
  }

  /** Redis says these keys changed. */
  invalidate(redisKeys: readonly string[]): void {
    let dropped = 0;
    for (const redisKey of redisKeys) {
      const dataKey = dataKeyOf(redisKey);
      if (dataKey !== undefined && this.dropData(dataKey)) dropped++;
    }
    if (dropped > 0) this.counters?.count('cacheInvalidation', dropped);
  }

  /** Everything may have changed. */
  flush(): void {
    this.flushedAt = ++this.seq;
    if (this.entries.size > 0) this.counters?.count('cacheInvalidation', this.entries.size);
    this.entries.clear();
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.entries.clear();
    this.unobserve();
    if (this.tracker) {
      this.unlisten?.();
      releaseTracker(this.connector);
    }
  }
}

/**
 * The data key of the object a Redis key belongs to
 * (`<ns>:{<tag>}:<kind>:<key>` with kind d, own, lease or rules), or
 * undefined for other keys (lifetimes, tombstones, finished calls).
 */
export function dataKeyOf(redisKey: string): string | undefined {
  const close = redisKey.indexOf('}:');
  if (close < 0) return undefined;
  const kindStart = close + 2;
  const kindEnd = redisKey.indexOf(':', kindStart);
  if (kindEnd < 0) return undefined;
  const kind = redisKey.slice(kindStart, kindEnd);
  if (!OBJECT_KINDS.has(kind)) return undefined;
  return kind === 'd' ? redisKey : `${redisKey.slice(0, kindStart)}d${redisKey.slice(kindEnd)}`;
}

/** The error of a read that came back older than a version this process has seen. */
export function olderVersion(key: string, version: number): RedisOperationError {
  return new RedisOperationError(
    `key ${key} read back at version ${version}, older than a version this process has already seen: ` +
      'a write acknowledged by Redis was lost (a failover before it reached the replica?)',
    { key },
  );
}
