/**
 * Server-assisted invalidation for the object cache (DESIGN.md §7.3): one
 * tracking connection per Redis node, each subscribed to
 * `__redis__:invalidate` with `CLIENT TRACKING ON REDIRECT <its own id> BCAST
 * PREFIX <namespace>:{` (RESP2). Redis then sends, on that connection, the
 * name of every key of the namespace that any client writes, deletes, or
 * that expires or is evicted, and a null message on a FLUSHALL/FLUSHDB.
 *
 * Why BCAST on a connection of its own rather than the default tracking
 * mode (Redis remembers the keys each client read and invalidates only
 * those): tracking state lives on the client that reads. The reading
 * connections are the connector's (perhaps the user's own client, and on a
 * Cluster ioredis's node connections, which it opens, closes and reconnects
 * by itself): each reconnect would silently turn tracking off, and a read
 * sent before tracking is turned on again would go untracked and stay cached
 * forever. With BCAST the only state is on this connection, which the cache
 * watches: when it drops, the cache is flushed and serves nothing until the
 * connection is back, tracking on and subscribed. The cost is that every
 * write of the namespace is announced to every caching process, in batches
 * (Redis sends one message per event-loop turn); `npm run bench` measures it
 * (docs/cache.md).
 *
 * On a Cluster, every master in ioredis's slot map gets a tracking
 * connection, and the set follows the topology (ioredis's `refresh`,
 * `+node` and `-node` events). The cache serves only while every slot has a
 * master whose tracking connection is up: a master killed drops its
 * connection (flush, no serving until ioredis has learnt the new master and
 * it is tracked); a master demoted by a graceful failover keeps announcing
 * the writes it now replicates until ioredis moves its slots to the
 * promoted replica, and a node that leaves the map flushes the cache too.
 *
 * A heartbeat PINGs each connection every second while the cache is in use
 * (a lookup within the last {@link IDLE_AFTER_MS}): a connection that goes
 * quiet (a half-open socket, a frozen server) stops the cache from serving
 * after {@link STALE_AFTER_MS} and is reconnected, so a missed invalidation
 * cannot hide behind a socket that never reports its death. A PONG is
 * ordered after every invalidation Redis sent before it on that connection,
 * which is also how {@link InvalidationTracker.barrier} works. An idle
 * process sends nothing (a process that only waits on futures shows nothing
 * in MONITOR); its connections go stale, so its next lookup is a miss that
 * flushes the cache and PINGs again, and caching resumes with the PONG.
 *
 * @module
 */
import { Redis, type Cluster, type RedisOptions } from 'ioredis';
import createDebug from 'debug';

const log = createDebug('proxystore:cache');

/** The channel Redis sends invalidations on, in RESP2. */
export const INVALIDATE_CHANNEL = '__redis__:invalidate';
/** How often each tracking connection is PINGed. */
export const HEARTBEAT_MS = 1000;
/** The cache stops serving when a tracking connection has not answered for this long. */
export const STALE_AFTER_MS = 3000;
/** The heartbeat pauses when no cache lookup has happened for this long. */
export const IDLE_AFTER_MS = 10_000;
const SLOTS = 16384;

/** What the tracker needs from a connector. */
export interface TrackedConnector {
  readonly namespace: string;
  readonly client: Redis | Cluster;
  readonly isCluster: boolean;
}

/** Receives what the tracker learns. */
export interface InvalidationListener {
  /** Redis keys (of the namespace) that changed. */
  invalidate(redisKeys: readonly string[]): void;
  /** Everything may have changed (a connection dropped, a FLUSHALL). */
  flush(): void;
}

/** The grants the cache needs besides the base ACL list (docs/security.md, "Redis ACL"). */
export const CACHE_ACL = '+client|id +client|tracking +client|setname +subscribe +ping &__redis__:invalidate';
let warnedNoPermission = false;

/** Once per process: the cache is off because the Redis user may not track. */
function warnNoPermission(namespace: string, message: string): void {
  if (warnedNoPermission) return;
  warnedNoPermission = true;
  process.emitWarning(
    `the object cache of namespace ${namespace} is off: this Redis user may not turn on invalidation tracking (${message}). ` +
      `Grant ${CACHE_ACL}, or set cacheSize: 0 (docs/security.md).`,
    { type: 'ProxyStoreWarning', code: 'PROXYSTORE_CACHE_NOPERM' },
  );
}

/** One tracking connection, to one node. */
class Link {
  readonly conn: Redis;
  up = false;
  lastPongMs = 0;
  private pinging = false;
  private pingSentMs = 0;
  private closed = false;

  constructor(
    private readonly tracker: InvalidationTracker,
    readonly address: string,
    options: RedisOptions,
  ) {
    this.conn = new Redis({
      ...options,
      lazyConnect: false,
      // Tracking has to be turned on again before subscribing: done by hand on every connect.
      autoResubscribe: false,
      readOnly: false,
      enableOfflineQueue: true,
      maxRetriesPerRequest: null,
      connectionName: 'proxystore-cache',
    });
    this.conn.on('error', (err: Error) => log('tracking connection %s: %s', address, err.message));
    // Never what keeps a process alive: the connector's own connection decides that.
    this.conn.on('connect', () => this.conn.stream?.unref());
    this.conn.on('ready', () => void this.setUp());
    this.conn.on('close', () => this.down('connection closed'));
    this.conn.on('messageBuffer', (channel: Buffer, message: unknown) => {
      if (channel.toString() !== INVALIDATE_CHANNEL) return;
      this.tracker.received(message);
    });
  }

  private async setUp(): Promise<void> {
    try {
      const id = await this.conn.client('ID');
      await this.conn.call('CLIENT', 'TRACKING', 'ON', 'REDIRECT', String(id), 'BCAST', 'PREFIX', `${this.tracker.namespace}:{`);
      await this.conn.subscribe(INVALIDATE_CHANNEL);
      if (this.closed) return;
      this.lastPongMs = Date.now();
      this.up = true;
      log('tracking on %s (client %s)', this.address, id);
      this.tracker.changed();
    } catch (err) {
      const message = (err as Error).message;
      log('tracking set-up on %s failed: %s', this.address, message);
      if (/NOPERM/.test(message)) {
        // An ACL user without the cache's grants: it never will track. Stop here (no
        // reconnect loop, nothing more in ACL LOG); the cache only misses.
        this.closed = true;
        this.conn.disconnect();
        warnNoPermission(this.tracker.namespace, message);
        return;
      }
      // Try again on a fresh connection.
      if (!this.closed) this.conn.disconnect(true);
    }
  }

  down(why: string): void {
    if (!this.up) return;
    this.up = false;
    log('tracking off on %s: %s', this.address, why);
    this.tracker.changed(true);
  }

  /** PING; resolves when the PONG (ordered after every invalidation sent before it) is in. */
  async ping(): Promise<void> {
    await this.conn.ping();
    this.lastPongMs = Date.now();
  }

  heartbeat(now: number): void {
    if (!this.up) return;
    if (this.pinging) {
      // Measured from the PING in flight (after an idle spell the last PONG is old by design).
      if (now - this.pingSentMs > STALE_AFTER_MS) {
        // Quiet too long: whatever it may have missed, start over.
        this.down('heartbeat unanswered');
        this.conn.disconnect(true);
      }
      return;
    }
    this.pinging = true;
    this.pingSentMs = now;
    this.ping().then(
      () => (this.pinging = false),
      () => (this.pinging = false),
    );
  }

  fresh(now: number): boolean {
    return this.up && now - this.lastPongMs <= STALE_AFTER_MS;
  }

  close(): void {
    this.closed = true;
    this.up = false;
    this.conn.disconnect();
  }
}

/**
 * The tracking connections of one connector, shared by every store on it
 * (each store keeps its own cache and listens here).
 */
export class InvalidationTracker {
  readonly namespace: string;
  /**
   * Bumped whenever the tracking state changes (a connection up or down, a
   * node added or removed): a read that started under another epoch is
   * never cached.
   */
  epoch = 0;
  private readonly links = new Map<string, Link>();
  private readonly listeners = new Set<InvalidationListener>();
  private heartbeatTimer: NodeJS.Timeout | undefined;
  private started = false;
  private closed = false;
  private readonly onTopology = (): void => this.reconcile();
  /** Invalidation messages received (for metrics and tests). */
  messages = 0;
  private waiters: (() => void)[] = [];
  /** Cluster: every slot has a master in the slot map (a single Redis: always). */
  private covered = true;
  /** When a cache last asked whether it may serve (the heartbeat runs only while that is recent). */
  private lastUseMs = 0;

  constructor(private readonly connector: TrackedConnector) {
    this.namespace = connector.namespace;
  }

  /** Open the tracking connection(s), once. Cheap to call on every read. */
  start(): void {
    if (this.started || this.closed) return;
    this.started = true;
    if (this.connector.isCluster) {
      const cluster = this.connector.client as Cluster;
      cluster.on('refresh', this.onTopology);
      cluster.on('+node', this.onTopology);
      cluster.on('-node', this.onTopology);
      this.reconcile();
    } else {
      const client = this.connector.client as Redis;
      const { host, port } = client.options;
      this.add(`${String(host)}:${String(port)}`, clientOptions(client));
    }
    this.heartbeatTimer = setInterval(() => {
      const now = Date.now();
      if (now - this.lastUseMs > IDLE_AFTER_MS) return;
      for (const link of this.links.values()) link.heartbeat(now);
    }, HEARTBEAT_MS);
    this.heartbeatTimer.unref();
  }

  /** Whether a cache may serve: every tracking connection up, tracking on, and heard from recently. */
  get serving(): boolean {
    this.lastUseMs = Date.now();
    return this.isServing(true);
  }

  /** {@link serving} without counting as a use (the tracker's own checks); `kick`: PING stale links. */
  private isServing(kick = false): boolean {
    if (!this.started || this.closed || this.links.size === 0 || !this.covered) return false;
    const now = Date.now();
    let fresh = true;
    for (const link of this.links.values()) {
      if (link.fresh(now)) continue;
      fresh = false;
      // Stale after an idle spell (the heartbeat paused): PING now, serve again from the PONG.
      if (kick && link.up) link.heartbeat(now);
    }
    return fresh;
  }

  /** The tracked node addresses (tests). @internal */
  addresses(): string[] {
    return [...this.links.keys()];
  }

  /** The tracking connections (tests: CLIENT KILL them). @internal */
  connections(): Redis[] {
    return [...this.links.values()].map((l) => l.conn);
  }

  listen(listener: InvalidationListener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  get listenerCount(): number {
    return this.listeners.size;
  }

  /**
   * Resolves once every invalidation that Redis sent before now has been
   * handled (a PING round trip on each tracking connection). Rejects when a
   * connection is down (the caller then simply does not serve from cache).
   */
  async barrier(): Promise<void> {
    await Promise.all([...this.links.values()].map((link) => link.ping()));
  }

  /** @internal A message on `__redis__:invalidate`. */
  received(message: unknown): void {
    this.messages++;
    if (message === null || message === undefined) {
      // FLUSHALL/FLUSHDB, or the server's tracking table overflowed: everything.
      for (const l of this.listeners) l.flush();
      return;
    }
    const keys = (Array.isArray(message) ? message : [message]).map((k: unknown) => (Buffer.isBuffer(k) ? k.toString() : String(k)));
    for (const l of this.listeners) l.invalidate(keys);
  }

  /** @internal The tracking state changed; `lost`: invalidations may have been missed. */
  changed(lost = false): void {
    this.epoch++;
    if (lost) for (const l of this.listeners) l.flush();
    if (this.waiters.length > 0 && this.isServing()) for (const wake of this.waiters.splice(0)) wake();
  }

  /**
   * Resolves true once the cache may serve (every tracking connection up),
   * false after `timeoutMs` or when the tracker closes first.
   */
  whenServing(timeoutMs: number): Promise<boolean> {
    this.start();
    if (this.isServing()) return Promise.resolve(true);
    if (this.closed) return Promise.resolve(false);
    return new Promise((resolve) => {
      const wake = (): void => {
        clearTimeout(timer);
        resolve(this.isServing());
      };
      const timer = setTimeout(() => {
        this.waiters = this.waiters.filter((w) => w !== wake);
        resolve(false);
      }, timeoutMs);
      timer.unref();
      this.waiters.push(wake);
    });
  }

  private add(address: string, options: RedisOptions): void {
    if (this.links.has(address)) return;
    this.links.set(address, new Link(this, address, options));
    // A new node: until it is tracked the cache does not serve.
    this.changed(true);
  }

  /**
   * Follow a Cluster's topology: one link per master that serves slots in
   * ioredis's slot map. A link whose node no longer serves slots is closed
   * and the caches flushed (it may have missed what its successor took);
   * while a slot has no master, or its master's link is not up, the cache
   * does not serve.
   */
  private reconcile(): void {
    if (this.closed) return;
    const cluster = this.connector.client as Cluster & { slots?: (string[] | undefined)[] };
    const slots = cluster.slots ?? [];
    const wanted = new Set<string>();
    let covered = slots.length >= SLOTS;
    for (let slot = 0; slot < SLOTS; slot++) {
      const master = slots[slot]?.[0];
      if (master === undefined) covered = false;
      else wanted.add(master);
    }
    const pool = new Map<string, Redis>();
    for (const node of cluster.nodes('all')) pool.set(`${String(node.options.host)}:${String(node.options.port)}`, node);
    let removed = false;
    for (const [address, link] of this.links) {
      if (!wanted.has(address)) {
        this.links.delete(address);
        link.close();
        removed = true;
      }
    }
    this.covered = covered;
    if (removed) this.changed(true);
    for (const address of wanted) {
      if (this.links.has(address)) continue;
      const node = pool.get(address);
      const [host, port] = splitAddress(address);
      const options = node ? clientOptions(node) : { ...(cluster.options.redisOptions ?? {}) };
      this.add(address, { ...options, host, port });
    }
    if (!covered) this.changed();
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    if (this.heartbeatTimer) clearInterval(this.heartbeatTimer);
    if (this.connector.isCluster) {
      const cluster = this.connector.client as Cluster;
      cluster.off('refresh', this.onTopology);
      cluster.off('+node', this.onTopology);
      cluster.off('-node', this.onTopology);
    }
    for (const link of this.links.values()) link.close();
    this.links.clear();
    this.epoch++;
    for (const wake of this.waiters.splice(0)) wake();
  }
}

/** `host:port` (IPv6 hosts keep their colons). */
function splitAddress(address: string): [string, number] {
  const i = address.lastIndexOf(':');
  return [address.slice(0, i), Number(address.slice(i + 1))];
}

/** The options a node connection was made with, without what only suits a command connection. */
function clientOptions(client: Redis): RedisOptions {
  const { ...options } = client.options;
  delete options.keyPrefix;
  return options;
}

const trackers = new WeakMap<object, { tracker: InvalidationTracker; users: number }>();

/**
 * The tracker of a connector, made on first use and shared by every store on
 * it; {@link releaseTracker} closes it when its last store lets go.
 */
export function acquireTracker(connector: TrackedConnector): InvalidationTracker {
  let entry = trackers.get(connector);
  if (!entry) {
    entry = { tracker: new InvalidationTracker(connector), users: 0 };
    trackers.set(connector, entry);
  }
  entry.users++;
  return entry.tracker;
}

/** Let go of a connector's tracker (the last user closes it). */
export function releaseTracker(connector: TrackedConnector): void {
  const entry = trackers.get(connector);
  if (!entry) return;
  if (--entry.users <= 0) {
    trackers.delete(connector);
    entry.tracker.close();
  }
}
