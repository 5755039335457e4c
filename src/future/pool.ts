/**
 * Waiting for futures without polling: each wait blocks in Redis, in an
 * `XREAD BLOCK` on the future's signal stream (written by lua/futureSet.lua
 * together with the value). XREAD returns at once when the stream already
 * has its entry, so a set that happened before the wait is never missed.
 * A wait may carry a probe (the future's data key): a GET sent on the same
 * connection in the same write as the XREAD, which finds a result set so
 * long ago that its signal expired, and saves the caller a round trip.
 *
 * Blocking reads hold their connection, so they get their own: a pool per
 * connector, bounded (`maxBlockingConnections`, a `p-limit`), reused across
 * futures. Waits are grouped, and one XREAD serves a whole group:
 *
 * - on a single Redis, up to `maxBlockingConnections` groups, filled up to
 *   {@link FILL} streams each before the next is opened, then evenly, so
 *   1,000 waits in one process use at most the bound's connections;
 * - on a Redis Cluster, one group per slot (XREAD refuses keys of several
 *   slots), read on a connection to the slot's master. Groups beyond the
 *   bound queue in the p-limit; while some queue, the running groups block
 *   {@link ROTATE_MS} at a time and then give their turn (the only case
 *   where a wait re-issues its XREAD on its own).
 *
 * A group's XREAD also reads the group's wake stream: adding a wait to a
 * group that is blocked, or leaving it empty (a timeout, an abort), writes
 * one entry there, and the XREAD returns and is issued again with the new
 * set of streams. Wake entries are read by id, so one written before the
 * XREAD reached Redis is not lost either.
 *
 * @module
 */
import type { Cluster, Redis } from 'ioredis';
import calculateSlot from 'cluster-key-slot';
import createDebug from 'debug';
import pLimit, { type LimitFunction } from 'p-limit';
import { randomId } from '../keys.js';
import { isWrongType } from '../chunks/format.js';

const log = createDebug('proxystore:future');

/** What a signal stream (or the wait's probe) said. */
export interface SignalEntry {
  /**
   * 'set': the result is there; 'ended': the future's lifetime ended before
   * it was set; 'unknown': the probe's GET failed (not for a chunked value):
   * read the result the usual way, and wait again if it is not there.
   */
  state: 'set' | 'ended' | 'unknown';
  /** The result's bytes: copied into the signal by the set (small results that are not consumed), or read by the probe. */
  value?: Buffer;
}

/** What the pool needs of a connector. */
export interface BlockingSource {
  readonly client: Redis | Cluster;
  readonly isCluster: boolean;
  /** Resolves once the client is connected (a Cluster then knows its slots). */
  ready(): Promise<void>;
}

/** How one wait ends besides its signal. */
export interface WaitOptions {
  /** Milliseconds; undefined waits until the signal, an abort or the pool's close. */
  timeoutMs?: number | undefined;
  signal?: AbortSignal | undefined;
  /** Whose wait this is: {@link BlockingPool.rejectOwner} ends all of one owner's waits. */
  owner: object;
  /** The error of a timeout. */
  timeoutError: () => Error;
  /** The error when the owner closes ({@link BlockingPool.rejectOwner}). */
  closedError: () => Error;
  /**
   * A key of the stream's slot (the future's data key) to GET on the
   * blocking connection just before the wait's first XREAD, in the same
   * write: a result that is there ends the wait with its bytes (a result set
   * long ago, whose signal expired, is found too); one that is not is
   * waited for by the XREAD that follows it on the same connection, so a set
   * in between is never missed.
   */
  probe?: string | undefined;
}

/** A single Redis fills a group up to this many streams before it opens the next. */
export const FILL = 64;
/** On a Cluster with more slots waited on than connections: how long a group blocks before giving its turn. */
export const ROTATE_MS = 250;
/** How long a wake stream lives (each wake renews it). */
const WAKE_TTL_MS = 60_000;
/** The name blocking connections give themselves (CLIENT LIST shows it). */
export const BLOCKING_CONNECTION_NAME = 'proxystore-redis:future-wait';

interface Waiter {
  stream: string;
  /** The key to GET before its first XREAD (cleared once sent). */
  probe: string | undefined;
  owner: object;
  closedError: () => Error;
  group: Group;
  resolve(entry: SignalEntry): void;
  reject(err: unknown): void;
}

class Group {
  readonly streams = new Map<string, Set<Waiter>>();
  /** The id of the last wake entry read. */
  wakeId = '0-0';
  /** A serve loop runs (or is queued in the p-limit). */
  running = false;
  /** An XREAD of this group is on the wire; `conn` carries it. */
  reading = false;
  conn: Redis | undefined;
  wakeQueued = false;
  /** Waiters whose probe goes out with the next XREAD. */
  probes: Waiter[] = [];

  constructor(
    readonly id: string,
    readonly slot: number | undefined,
    readonly wakeKey: string,
  ) {}
}

/** Counts for tests and the benchmark. */
export interface PoolStats {
  /** Blocking connections open now. */
  open: number;
  /** Blocking connections opened since the pool was made. */
  opened: number;
  /** The most that were open at once. */
  peak: number;
  /** Waits now pending. */
  waits: number;
  /** Groups queued for a connection. */
  queued: number;
}

const pools = new WeakMap<object, BlockingPool>();

/** The pool of a connector (made at its first wait). */
export function poolOf(source: BlockingSource, max: number): BlockingPool {
  let pool = pools.get(source);
  if (!pool || pool.isClosed) {
    pool = new BlockingPool(source, max);
    pools.set(source, pool);
  }
  return pool;
}

/** The pool of a connector if it has one (stats, close). */
export function existingPool(source: object): BlockingPool | undefined {
  return pools.get(source);
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

function errorText(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/** A signal entry's fields: `s` (set | ended), `t` (the setter's token), `v` (the value, if copied). */
function parseEntry(fields: Buffer[]): SignalEntry {
  const entry: SignalEntry = { state: 'set' };
  for (let i = 0; i + 1 < fields.length; i += 2) {
    const name = (fields[i] as Buffer).toString();
    if (name === 's' && (fields[i + 1] as Buffer).toString() === 'ended') entry.state = 'ended';
    else if (name === 'v') entry.value = fields[i + 1] as Buffer;
  }
  return entry;
}

/** The blocking connections of one connector and the waits they serve. */
export class BlockingPool {
  private readonly limit: LimitFunction;
  private readonly groups = new Map<string, Group>();
  /** Idle connections by node ('' on a single Redis, 'host:port' on a Cluster). */
  private readonly idle = new Map<string, Redis[]>();
  private readonly all = new Set<Redis>();
  private readonly id = randomId().slice(0, 8);
  private opened = 0;
  private peak = 0;
  private waits = 0;
  private closed = false;

  constructor(
    private readonly source: BlockingSource,
    readonly max: number,
  ) {
    this.limit = pLimit(max);
  }

  get isClosed(): boolean {
    return this.closed;
  }

  stats(): PoolStats {
    return { open: this.all.size, opened: this.opened, peak: this.peak, waits: this.waits, queued: this.limit.pendingCount };
  }

  /**
   * Block until `stream` has its entry (at once if it has one), the timeout,
   * the abort signal, or the owner's close. The connection is given back (or
   * woken to drop the stream) whichever comes first.
   */
  wait(stream: string, options: WaitOptions): Promise<SignalEntry> {
    if (options.signal?.aborted) return Promise.reject(options.signal.reason);
    return new Promise<SignalEntry>((resolve, reject) => {
      let timer: NodeJS.Timeout | undefined;
      const onAbort = () => settle(() => reject(options.signal?.reason));
      const settle = (finish: () => void) => {
        if (timer) clearTimeout(timer);
        options.signal?.removeEventListener('abort', onAbort);
        if (this.remove(waiter)) finish();
      };
      const group = this.groupFor(stream);
      const waiter: Waiter = {
        stream,
        probe: options.probe,
        owner: options.owner,
        closedError: options.closedError,
        group,
        resolve: (entry) => settle(() => resolve(entry)),
        reject: (err) => settle(() => reject(err)),
      };
      if (options.timeoutMs !== undefined) timer = setTimeout(() => settle(() => reject(options.timeoutError())), options.timeoutMs);
      options.signal?.addEventListener('abort', onAbort, { once: true });
      this.add(waiter);
    });
  }

  /** End every wait of `owner` with its closed error (its store closed); with no wait left, close the connections. */
  rejectOwner(owner: object): void {
    for (const group of [...this.groups.values()]) {
      for (const set of [...group.streams.values()]) {
        for (const waiter of [...set]) if (waiter.owner === owner) waiter.reject(waiter.closedError());
      }
    }
    if (this.waits === 0) this.close();
  }

  /** Close every connection; pending waits stay pending (see {@link rejectOwner}). */
  close(): void {
    this.closed = true;
    for (const conn of this.all) conn.disconnect();
    this.all.clear();
    this.idle.clear();
  }

  private groupFor(stream: string): Group {
    if (this.source.isCluster) {
      const slot = calculateSlot(stream);
      const id = `s${slot}`;
      return this.groups.get(id) ?? this.newGroup(id, slot, stream);
    }
    let fewest: Group | undefined;
    for (const group of this.groups.values()) {
      if (group.streams.has(stream)) return group;
      if (!fewest || group.streams.size < fewest.streams.size) fewest = group;
    }
    if (fewest && (fewest.streams.size < FILL || this.groups.size >= this.max)) return fewest;
    for (let i = 0; ; i++) if (!this.groups.has(`g${i}`)) return this.newGroup(`g${i}`, undefined, stream);
  }

  private newGroup(id: string, slot: number | undefined, stream: string): Group {
    // In the slot of the group's streams, and shaped as a signal stream
    // (`<ns>:{<tag>}:sig:<tag>~wake-<pool>-<group>`), so the command line
    // knows it for one of the library's short-lived keys.
    const close = stream.indexOf('}:');
    const tag = stream.slice(stream.indexOf(':{') + 2, close);
    const group = new Group(id, slot, `${stream.slice(0, close + 2)}sig:${tag}~wake-${this.id}-${id}`);
    this.groups.set(id, group);
    return group;
  }

  private add(waiter: Waiter): void {
    const group = waiter.group;
    if (!this.groups.has(group.id)) this.groups.set(group.id, group);
    let set = group.streams.get(waiter.stream);
    if (!set) group.streams.set(waiter.stream, (set = new Set()));
    set.add(waiter);
    if (waiter.probe !== undefined) group.probes.push(waiter);
    this.waits++;
    this.closed = false;
    if (!group.running) this.start(group);
    else if (group.reading && set.size === 1) this.wake(group);
  }

  /** Take a waiter out; false when it was already out (settled). */
  private remove(waiter: Waiter): boolean {
    const group = waiter.group;
    const set = group.streams.get(waiter.stream);
    if (!set?.delete(waiter)) return false;
    this.waits--;
    if (set.size === 0) group.streams.delete(waiter.stream);
    // Nothing left to read: free its connection now.
    if (group.streams.size === 0 && group.reading) this.wake(group);
    return true;
  }

  private start(group: Group): void {
    group.running = true;
    if (this.limit.activeCount >= this.max) log('%d group(s) queued for a blocking connection (max %d)', this.limit.pendingCount + 1, this.max);
    void this.limit(() => this.serve(group)).catch((err: unknown) => {
      // serve() handles its own errors; this is a bug guard.
      log('wait loop failed: %s', errorText(err));
      group.running = false;
    });
  }

  /** Write one entry to the group's wake stream (once per tick), so its XREAD returns and is issued again. */
  private wake(group: Group): void {
    if (group.wakeQueued) return;
    group.wakeQueued = true;
    setImmediate(() => {
      group.wakeQueued = false;
      if (!group.reading) return;
      this.source.client
        .multi()
        .xadd(group.wakeKey, 'MAXLEN', '1', '*', 'w', '1')
        .pexpire(group.wakeKey, WAKE_TTL_MS)
        .exec()
        .catch((err: unknown) => {
          // Unreachable Redis: the XREAD fails too and the loop starts over.
          log('wake of %s failed: %s', group.wakeKey, errorText(err));
        });
    });
  }

  private async serve(group: Group): Promise<void> {
    let failures = 0;
    while (group.streams.size > 0 && !this.closed) {
      const streams = [...group.streams.keys()];
      // Others wait for a connection: block a slice, then give the turn.
      const rotate = this.limit.pendingCount > 0;
      let conn: Redis | undefined;
      let node = '';
      let reply: unknown;
      try {
        // No await on the usual path (a single Redis, an idle connection): the XREAD goes out in
        // the tick of the wait, ahead of whatever the caller sends next (a setResult).
        node = group.slot === undefined ? '' : await this.nodeOf(group);
        conn = this.reuse(node) ?? (await this.acquire(node));
        group.reading = true;
        group.conn = conn;
        // The probes and the XREAD in one write (a corked socket): one round trip, one syscall.
        // (A probe of a wait that joined a stream another wait already blocks on goes with the
        // next XREAD, if any: while that read is in place, a set wakes both.)
        const socket = conn.status === 'ready' ? conn.stream : undefined;
        socket?.cork();
        let read: Promise<unknown>;
        try {
          this.sendProbes(group, conn);
          read = conn.xreadBuffer(
            'BLOCK',
            rotate ? ROTATE_MS : 0,
            'STREAMS',
            group.wakeKey,
            ...streams,
            group.wakeId,
            ...streams.map(() => '0-0'),
          );
        } finally {
          socket?.uncork();
        }
        reply = await read;
        group.reading = false;
        group.conn = undefined;
        this.release(node, conn);
        failures = 0;
      } catch (err) {
        group.reading = false;
        group.conn = undefined;
        if (conn) this.discard(conn);
        if (this.closed) break;
        const text = errorText(err);
        log('blocking read of group %s failed: %s', group.id, text);
        // A redirection, or a connection that died (a master that failed over?): learn the slots again.
        if (this.source.isCluster) await this.refreshSlots();
        await sleep(Math.min(1000, 25 * 2 ** failures++));
        continue;
      }
      const progress = this.deliver(group, reply);
      if (rotate && !progress && group.streams.size > 0 && this.limit.pendingCount > 0) {
        // Back to the end of the queue.
        void this.limit(() => this.serve(group));
        return;
      }
    }
    group.running = false;
    if (group.streams.size === 0) {
      if (this.groups.get(group.id) === group) this.groups.delete(group.id);
    } else if (!this.closed) {
      this.start(group);
    }
  }

  /**
   * GET the probe key of each waiter of `group` that has not had its probe
   * yet (on `conn`, before the XREAD): bytes end the wait with them; a
   * chunked value (a hash: WRONGTYPE) ends it with no bytes (the caller
   * reads it); nothing lets the XREAD wait; any other error ends it
   * 'unknown' (the caller reads the usual way, then waits again).
   */
  private sendProbes(group: Group, conn: Redis): void {
    if (group.probes.length === 0) return;
    const probes = group.probes;
    group.probes = [];
    for (const waiter of probes) {
      const key = waiter.probe;
      if (key === undefined || !group.streams.get(waiter.stream)?.has(waiter)) continue;
      waiter.probe = undefined;
      conn.getBuffer(key).then(
        (bytes) => {
          if (bytes !== null) waiter.resolve({ state: 'set', value: bytes });
        },
        (err: unknown) => waiter.resolve(isWrongType(err) ? { state: 'set' } : { state: 'unknown' }),
      );
    }
  }

  /** Hand the entries of an XREAD reply to their waiters; whether any waiter was served. */
  private deliver(group: Group, reply: unknown): boolean {
    if (!Array.isArray(reply)) return false;
    let served = false;
    for (const item of reply as [Buffer, [Buffer, Buffer[]][]][]) {
      const stream = item[0].toString();
      const entries = item[1];
      const last = entries[entries.length - 1];
      if (!last) continue;
      if (stream === group.wakeKey) {
        group.wakeId = last[0].toString();
        continue;
      }
      const entry = parseEntry((entries[0] as [Buffer, Buffer[]])[1]);
      for (const waiter of [...(group.streams.get(stream) ?? [])]) {
        waiter.resolve(entry);
        served = true;
      }
    }
    return served;
  }

  /** The node that serves a group: '' on a single Redis, the slot's master 'host:port' on a Cluster. */
  private async nodeOf(group: Group): Promise<string> {
    if (group.slot === undefined) return '';
    const cluster = this.source.client as Cluster;
    if (cluster.status !== 'ready') await this.source.ready();
    const node = cluster.slots[group.slot]?.[0];
    if (node === undefined) {
      await this.refreshSlots();
      throw new Error(`CLUSTERDOWN no master known for slot ${group.slot}`);
    }
    return node;
  }

  private refreshSlots(): Promise<void> {
    if (!this.source.isCluster) return Promise.resolve();
    return new Promise((resolve) => (this.source.client as Cluster).refreshSlotsCache(() => resolve()));
  }

  /** An idle connection to `node`, if there is one. */
  private reuse(node: string): Redis | undefined {
    const reused = this.idle.get(node)?.pop();
    reused?.stream?.ref();
    return reused;
  }

  /** A new connection to `node` (see {@link reuse} first). */
  private async acquire(node: string): Promise<Redis> {
    // Over the bound only when idle connections to other nodes fill it: close one of those.
    if (this.all.size >= this.max) {
      for (const [other, conns] of this.idle) {
        const spare = conns.pop();
        if (spare) {
          if (conns.length === 0) this.idle.delete(other);
          this.discard(spare);
          break;
        }
      }
    }
    const conn = await this.connect(node);
    this.all.add(conn);
    this.opened++;
    this.peak = Math.max(this.peak, this.all.size);
    return conn;
  }

  private async connect(node: string): Promise<Redis> {
    // No command timeout (the read blocks on purpose), a name that CLIENT
    // LIST shows, and no reconnection of its own: a connection that drops
    // fails its read, and the wait loop reads again on a fresh connection
    // (to the slot's master as the cluster knows it then).
    const override = { commandTimeout: undefined, lazyConnect: false, connectionName: BLOCKING_CONNECTION_NAME, retryStrategy: () => null };
    if (node === '') {
      const conn = (this.source.client as Redis).duplicate(override);
      conn.on('error', (err: Error) => log('blocking connection: %s', err.message));
      return conn;
    }
    const cluster = this.source.client as Cluster;
    const found = cluster.nodes('master').find((n) => `${n.options.host}:${n.options.port}` === node);
    if (!found) {
      await this.refreshSlots();
      throw new Error(`MOVED no connection to ${node} (slot map changed)`);
    }
    const conn = found.duplicate(override);
    conn.on('error', (err: Error) => log('blocking connection to %s: %s', node, err.message));
    return conn;
  }

  private release(node: string, conn: Redis): void {
    if (this.closed || !this.all.has(conn)) {
      this.discard(conn);
      return;
    }
    let idle = this.idle.get(node);
    if (!idle) this.idle.set(node, (idle = []));
    // An idle blocking connection does not keep the process alive (a
    // serverless handler or script that awaited a future ends when it is
    // done); a read in progress does.
    conn.stream?.unref();
    idle.push(conn);
  }

  private discard(conn: Redis): void {
    this.all.delete(conn);
    conn.disconnect();
  }
}
