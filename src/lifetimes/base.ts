/**
 * The Redis side of one lifetime, shared by the three lifetime classes: its
 * keys and every script call on them. A lifetime is
 *
 *     <ns>:{<id>}:lt        meta hash: state (open | closing | ended), kind,
 *                           name, createdAt, expiresAt (leases), endedAt
 *     <ns>:{<id>}:members   set of own members: store keys `<id>~<random>`,
 *                           whose data keys share the lifetime's hash tag
 *     <ns>:{<id>}:foreign   set of foreign members: whole data keys of
 *                           objects in other hash tags (added with addKey)
 *     <ns>:{<id>}:ends      sorted set of the members that have their own
 *                           end (a ttl) or a rules record (reads: n), named
 *                           as in their set, scored by their own end (Unix
 *                           ms; NO_OWN_END for none): an extend gives them
 *                           the earlier of the lease and their own end, a
 *                           close takes their rules records along
 *     <ns>:{<id>}:evicting  during a close on Redis Cluster: foreign members
 *                           handed to a closer and not yet unlinked
 *     <ns>:{<id>}:dedupe    deduped objects it holds a reference on (their
 *                           store keys): its end releases the references
 *                           (../dedupe/lifetime.ts), never deletes the objects
 *
 * and it is changed only by the `lifetime*.lua` scripts. Work per script call
 * is bounded ({@link lifetimeTuning}): a batch is split into several calls
 * sent in one pipeline, and close/extend go in chunks, one call after the
 * other, so no call blocks Redis for long.
 *
 * Foreign members live in other slots. On a single Redis the scripts expire
 * and evict them themselves, in the same atomic call; on Redis Cluster they
 * cannot (CROSSSLOT), so the scripts only record and pop them and this side
 * applies the effect on their own masters (./foreign.ts), in the order that
 * keeps every crash window safe (docs/lifetimes.md, "On Redis Cluster").
 *
 * @module
 */
import { dropStaged, scriptValue, stageLarge, type PutValue } from '../chunks/put.js';
import createDebug from 'debug';
import { InvalidOptionsError, LifetimeEndedError, ProxyStoreFactoryError } from '../errors.js';
import { checkOptions } from '../options.js';
import { NO_OWN_END, randomId, validateKey } from '../keys.js';
import { proxyState, type ProxyState } from '../proxy/proxy.js';
import type { RedisConnector } from '../redis/connector.js';
import type { LifetimeCreateReply, LifetimeStateBefore, ScriptArgs, ScriptKeys, ScriptReply } from '../redis/scripts.js';
import type { Store } from '../store.js';
import { checkHandles, refuseBoundElsewhere } from '../ownership/lifetimes.js';
import { bindForeign, ForeignExpiry, NO_LEASE, probeForeign, unlinkForeign } from './foreign.js';
import type { AddKeyArgs, AddKeyOptions, NewOwner } from './lifetime.js';
import { isDedupeKey } from '../dedupe/key.js';
import { addToLifetime, extendAll, putInLifetime, releaseAll } from '../dedupe/lifetime.js';

// Typed without `debug`'s types, which the published declarations must not name (a user
// would need @types/debug to compile them without skipLibCheck).
export const log: (formatter: string, ...args: unknown[]) => void = createDebug('proxystore:lifetime');

/**
 * Bounds on the work of one script call. `chunk` members per close/extend
 * step keeps each call well under 50 ms on a 1,000,000-member lifetime
 * (see bench/lifetimes.ts and docs/lifetimes.md); puts are split by count
 * and by bytes. Mutable for tests and the benchmark only.
 * @internal
 */
export const lifetimeTuning = {
  /** Members evicted or re-expired per close/extend call. */
  chunk: 1000,
  /** Most objects written or added per put/addKeys call. */
  batch: 1000,
  /** A put call stops taking more values once it holds this many bytes. */
  batchBytes: 8 * 1024 * 1024,
  /**
   * Whether the scripts expire and evict foreign members themselves
   * (possible only when every key is on one server); undefined: yes on a
   * single Redis, no on Redis Cluster. Tests set false to run the Cluster
   * way on a single Redis.
   */
  foreignInScript: undefined as boolean | undefined,
};

/** The kinds of lifetime, as recorded in the meta hash. */
export type LifetimeKind = 'context' | 'lease' | 'static';

/**
 * How many lease lengths a StaticLifetime part's keys and members outlive
 * its lease end: the outage margin (lua/includes/keysExpireAt.lua, which
 * this side mirrors to give foreign members on Redis Cluster the same
 * expiry). A LeaseLifetime's keys expire at its end.
 */
export const STATIC_MARGIN_LEASES = 2;

/** A static part's lease length (ms) as its meta records it, if valid (as lua/includes/staticLease.lua reads it). */
function staticLease(lease: string | null | undefined): number | undefined {
  const n = Number(lease);
  return lease && Number.isInteger(n) && n >= 1 && n <= 2_592_000_000 ? n : undefined;
}

/** When the keys of a lifetime whose lease ends at `expiresAt` expire; `lease`: a static part's lease length. */
function keysExpireAt(expiresAt: number, lease: number | undefined): number {
  return lease === undefined ? expiresAt : expiresAt + STATIC_MARGIN_LEASES * lease;
}

/** The state of a lifetime as Redis holds it; undefined when Redis does not know it. */
export type LifetimeState = 'open' | 'closing' | 'ended' | undefined;

/** How a new lifetime's lease is given: none, milliseconds from now (server clock), or a Unix time in ms. */
export type ExpirySpec = { mode: 'none' } | { mode: 'in' | 'at'; ms: number };

/**
 * The rules of new objects put under a lifetime (the same for every object
 * of one call): how many consuming reads each allows (1: no rules record)
 * and its own ttl (ms from the put, server clock), if any.
 */
export interface ObjectRules {
  reads: number;
  ttlMs: number | undefined;
  /** Deduped objects (src/dedupe/): the lifetime holds a reference on each. */
  dedupe?: boolean;
}

/** No reads budget, no own ttl. */
export const PLAIN: ObjectRules = { reads: 1, ttlMs: undefined };

/** What a finished close found and did. */
export interface CloseResult {
  evicted: number;
  /** The state the first step found. */
  before: LifetimeStateBefore;
}

/** Split `items` into runs of at most `size` (and, with `bytes`, at most `maxBytes` bytes unless one item alone is bigger). */
function chunked<T>(items: T[], size: number, bytes?: (item: T) => number, maxBytes = Infinity): T[][] {
  const out: T[][] = [];
  let current: T[] = [];
  let currentBytes = 0;
  for (const item of items) {
    const b = bytes ? bytes(item) : 0;
    if (current.length > 0 && (current.length >= size || currentBytes + b > maxBytes)) {
      out.push(current);
      current = [];
      currentBytes = 0;
    }
    current.push(item);
    currentBytes += b;
  }
  if (current.length > 0) out.push(current);
  return out;
}

/** One lifetime in Redis: its keys and the script calls on them. */
export class LifetimeRecord {
  readonly meta: string;
  readonly members: string;
  readonly foreign: string;
  readonly ends: string;
  readonly evicting: string;
  /** Its futures that have no result yet (own member names): its close writes their signal. */
  readonly futures: string;
  /** The deduped objects it holds a reference on (src/dedupe/lifetime.ts). */
  readonly dedupe: string;
  /** What every own member's data key starts with: `<ns>:{<id>}:d:`. */
  private readonly ownPrefix: string;

  constructor(
    readonly connector: RedisConnector,
    readonly id: string,
  ) {
    this.meta = connector.keys.lifetime('lt', id);
    this.members = connector.keys.lifetime('members', id);
    this.foreign = connector.keys.lifetime('foreign', id);
    this.ends = connector.keys.lifetime('ends', id);
    this.evicting = connector.keys.lifetime('evicting', id);
    this.futures = connector.keys.lifetime('futures', id);
    this.dedupe = connector.keys.lifetime('dedupe', id);
    this.ownPrefix = `${this.meta.slice(0, -'lt'.length)}d:`;
  }

  private get sets(): { meta: string; members: string; foreign: string; ends: string } {
    return { meta: this.meta, members: this.members, foreign: this.foreign, ends: this.ends };
  }

  private get context(): { lifetime: string } {
    return { lifetime: this.id };
  }

  /** Whether the scripts touch foreign members themselves (see {@link lifetimeTuning}). */
  private get foreignInScript(): boolean {
    return lifetimeTuning.foreignInScript ?? !this.connector.isCluster;
  }

  /** The `foreign` argument of the close and extend scripts. */
  private get foreignMode(): 'touch' | 'return' {
    return this.foreignInScript ? 'touch' : 'return';
  }

  /**
   * Create the meta record (one round trip). The call's token is recorded
   * with it, so a resend of this call after a lost reply finds its own
   * lifetime instead of "already exists".
   */
  create(kind: LifetimeKind, name: string | undefined, expiry: ExpirySpec): Promise<LifetimeCreateReply> {
    return this.connector.scripts.run(
      'lifetimeCreate',
      { meta: this.meta },
      { kind, name: name ?? '', expiry: expiry.mode, ms: expiry.mode === 'none' ? 0 : expiry.ms, token: randomId() },
      { lifetime: this.id },
    );
  }

  /**
   * Write `values` under `keys` (all inside this lifetime's tag) as members,
   * each with `rules` (a reads budget, an own ttl); one round trip.
   */
  async put(keys: string[], values: PutValue[], rules: ObjectRules = PLAIN, chunkSize?: number): Promise<void> {
    const withRules = rules.reads > 1;
    // Values over chunkSize: their chunks first, to staging hashes the script renames (src/chunks/).
    const staged = await stageLarge(this.connector, keys, values, chunkSize);
    const objects = keys.map((key, i) => {
      const data = this.connector.dataKey(key);
      const s = staged[i];
      return {
        items: withRules ? [data, this.connector.keys.object('rules', key), s ? s.stage : data] : [data, s ? s.stage : data],
        value: s ? Buffer.from(s.manifest.text) : (values[i] as Buffer),
      };
    });
    const calls = chunked(objects, lifetimeTuning.batch, (o) => o.value.length, lifetimeTuning.batchBytes);
    try {
      await this.runAll(
        'lifetimePut',
        calls.map(
          (c) =>
            [
              { ...this.sets, items: c.flatMap((o) => o.items) },
              { reads: rules.reads, ttlMs: rules.ttlMs ?? 0, values: c.map((o) => o.value) },
            ] as const,
        ),
      );
    } catch (err) {
      await dropStaged(this.connector, staged);
      throw err;
    }
  }

  /**
   * Make `key` (inside this lifetime's tag) a member with no value yet: a
   * future, listed in `futures` until it is set (lua/futureSet.lua), so
   * that a close that comes first wakes its waiters. One round trip.
   */
  async addFuture(key: string): Promise<void> {
    await this.connector.scripts.run('futureCreate', { meta: this.meta, members: this.members, futures: this.futures }, { member: key }, this.context);
  }

  /**
   * Write `bytes` under `key` (inside this lifetime's tag) as a new owned
   * member whose owner is `owner`; one round trip (lua/lifetimeOwnedCreate.lua).
   */
  async ownedPut(key: string, bytes: Buffer, owner: NewOwner, chunkSize = Infinity): Promise<void> {
    const keys = this.connector.keys;
    // Over chunkSize: chunks staged first, renamed in by the script (src/chunks/).
    const v = await scriptValue(this.connector, key, bytes, chunkSize);
    try {
      await this.connector.scripts.run(
        'lifetimeOwnedCreate',
        { ...this.sets, data: keys.object('d', key), record: keys.object('own', key), leases: keys.object('lease', key), stage: v.stage },
        { key, bytes: v.value, token: owner.token, holder: owner.holder, ttlMs: owner.ttlMs },
        { key, lifetime: this.id },
      );
    } catch (err) {
      if (v.staged) await dropStaged(this.connector, [v.staged]);
      throw err;
    }
  }

  /**
   * Add existing store keys as members (own or foreign). One round trip on
   * a single Redis, where the script also gives foreign keys the lease and
   * binds owned objects to the lifetime, atomically (each object's ownership
   * record and leases go with its data key). On Redis Cluster, foreign keys
   * are first probed on their own masters (owned? bound to another lifetime?
   * their expiry and rules record), owned ones are bound there
   * (lua/memberExpire.lua), and foreign keys of a lease get the lease end
   * *before* the script records them (a crash in between leaves them
   * expiring at the lease end, never a member without a TTL that outlives
   * the lease), and again after it if an extend moved the end meanwhile.
   */
  async addKeys(keys: string[]): Promise<void> {
    if (keys.some(isDedupeKey)) {
      // Deduped objects are shared: the lifetime holds a reference on them instead.
      const deduped = keys.filter(isDedupeKey);
      const others = keys.filter((k) => !isDedupeKey(k));
      await addToLifetime(this, deduped);
      if (others.length > 0) await this.addKeys(others);
      return;
    }
    const objects = keys.map((key) => ({
      key,
      data: this.connector.dataKey(key),
      record: this.connector.keys.object('own', key),
      rules: this.connector.keys.object('rules', key),
      leases: this.connector.keys.object('lease', key),
    }));
    const triples = (some: typeof objects) => some.flatMap((o) => [o.data, o.record, o.rules, o.leases]);
    if (this.foreignInScript) {
      const calls = chunked(objects, lifetimeTuning.batch);
      await this.runAll('lifetimeAddKeys', calls.map((c) => [{ ...this.sets, objects: triples(c) }, { elsewhere: [] }] as const));
      return;
    }
    const own = objects.filter((o) => o.data.startsWith(this.ownPrefix));
    const foreign = objects.filter((o) => !o.data.startsWith(this.ownPrefix));
    const elsewhere = foreign.map((o) => o.data);
    const expiry = new ForeignExpiry(this.connector, this.id, this.context);
    // Not open: the script refuses, with the message that says how it ended.
    // The foreign keys' masters are asked meanwhile whether each is owned
    // (and bound to another lifetime: refused), and for its expiry and rules
    // record: a lifetime never lengthens an object's life.
    const [before, probes] = await Promise.all([
      elsewhere.length > 0 ? this.membersExpireAt() : NO_LEASE,
      probeForeign(this.connector, foreign.map((o) => o.key), this.context),
    ]);
    const boundTo = probes.map((p) => p.boundTo);
    if (boundTo.some((id) => id !== undefined && id !== this.id)) {
      // A lifetime that ended refuses as such first, as the script does on a
      // single Redis: an empty add answers how it ended, or adds nothing.
      await this.connector.scripts.run('lifetimeAddKeys', { ...this.sets, objects: [] }, { elsewhere: [] }, this.context);
      refuseBoundElsewhere(
        foreign.map((o) => o.key),
        boundTo,
        this.id,
      );
    }
    // What the script records for each: its expiry as it joins (its own end), or a rules record without one.
    // (An expiry equal to this lease's end is the lease's own: a key that is a member already.) An owned
    // object's expiry is its owner's: its own end is the bound its record already has, if any.
    const ownEnds = probes.map((p) =>
      p.owned
        ? (p.untilMs ?? 0)
        : p.expiresAtMs !== undefined && p.expiresAtMs !== before
          ? p.expiresAtMs
          : p.rules
            ? NO_OWN_END
            : 0,
    );
    // Under a lease, owned ones are bound on their masters first, as the
    // others get their expiry (just below). Without one, after the script
    // (which refuses a lifetime that ended): a crash in between leaves a
    // member whose record does not name the lifetime, which its close ends
    // all the same (memberEnd reads the record).
    const owned = elsewhere.filter((_, i) => probes[i]?.owned);
    const plain = elsewhere.filter((_, i) => ownEnds[i] === 0);
    const capped = elsewhere.flatMap((key, i) => (ownEnds[i] === 0 ? [] : [{ key, ownEnd: ownEnds[i] as number }]));
    // (The probe just told which have an ownership record: the first expiry needs no second look.)
    const recorded = new Set(elsewhere.filter((_, i) => probes[i]?.record));
    await expiry.apply(plain, before, capped, recorded);
    const pairs = elsewhere.flatMap((key, i) => [key, ownEnds[i] as number]);
    const calls = [
      ...chunked(own, lifetimeTuning.batch).map((c) => [{ ...this.sets, objects: triples(c) }, { elsewhere: [] }] as const),
      ...chunked(pairs, 2 * lifetimeTuning.batch).map((e) => [{ ...this.sets, objects: [] }, { elsewhere: e }] as const),
    ];
    const ends = (await this.runAll('lifetimeAddKeys', calls)).map((r) => r.expiresAtMs);
    if (owned.length > 0 && before === NO_LEASE && ends.every((end) => end === NO_LEASE)) {
      await bindForeign(this.connector, owned, this.id, this.context, recorded);
    }
    if (elsewhere.length === 0) return;
    // Each call saw the expiry the keys it recorded must carry; any other
    // than the one applied before means an extend ran in between.
    if (ends.every((end) => end === before)) await expiry.observe(before);
    else await expiry.moved(ends[ends.length - 1] as number);
    await expiry.settle(() => this.membersExpireAt());
  }

  /** Store `values` as deduped objects this lifetime holds a reference on; their keys. */
  putDeduped(values: Buffer[]): Promise<string[]> {
    return putInLifetime(this, values);
  }

  /**
   * When the members of an open lease expire (one HMGET): its lease end, and
   * for a StaticLifetime part its lease end plus the outage margin (as
   * lua/includes/keysExpireAt.lua computes it); {@link NO_LEASE} otherwise.
   * @internal
   */
  async membersExpireAt(): Promise<number> {
    const fields = await this.connector.command('HMGET', this.context, () => this.connector.client.hmget(this.meta, 'state', 'expiresAt', 'kind', 'lease'));
    const [state, expiresAt, kind, lease] = fields;
    if (state !== 'open' || !expiresAt) return NO_LEASE;
    return keysExpireAt(Number(expiresAt), kind === 'static' ? staticLease(lease) : undefined);
  }

  /** One script call per batch, pipelined when there are several; their replies. */
  private async runAll<N extends 'lifetimePut' | 'lifetimeAddKeys'>(
    name: N,
    calls: readonly (readonly [ScriptKeys<N>, ScriptArgs<N>])[],
  ): Promise<ScriptReply<N>[]> {
    const scripts = this.connector.scripts;
    const context = this.context;
    if (calls.length === 1) {
      const [keys, args] = calls[0] as readonly [ScriptKeys<N>, ScriptArgs<N>];
      return [await scripts.run(name, keys, args, context)];
    }
    // One pipeline (all in the lifetime's slot); on a Cluster, calls turned
    // away by a migration are sent again, alone, with the same arguments.
    const replies = await this.connector.batch(
      calls.map(([keys, args]) => ({ key: this.meta, queue: (p) => scripts.queue(p, name, keys, args) })),
      name,
      context,
    );
    return replies.map((reply) => scripts.decode(name, reply));
  }

  /**
   * Close: mark the lifetime closing, evict every member in chunks (one
   * script call after the other), leave an 'ended' marker that expires after
   * `endedTtlMs`. Safe to run from several processes at once, and to resume
   * a close that a dead process began.
   */
  async close(endedTtlMs: number): Promise<CloseResult> {
    let evicted = 0;
    let before: LifetimeStateBefore | undefined;
    // On Redis Cluster each step hands over foreign members (parked in the
    // lifetime's `evicting` set); the next step learns they are unlinked.
    let unlinked: string[] = [];
    for (;;) {
      const step = await this.connector.scripts.run(
        'lifetimeClose',
        { ...this.sets, evicting: this.evicting, futures: this.futures, dedupe: this.dedupe },
        // A token per step: a resend of the step answers as its first run.
        { count: lifetimeTuning.chunk, endedTtlMs, foreign: this.foreignMode, token: randomId(), unlinked },
        this.context,
      );
      before ??= step.before;
      evicted += step.evicted;
      if (step.finished) {
        // Ended: nothing joins any more. Its deduped objects, if any, lose its reference (the last one deletes).
        if (step.deduped) evicted += await releaseAll(this);
        return { evicted, before };
      }
      if (step.handed.length > 0) evicted += await unlinkForeign(this.connector, step.handed, this.id, this.context);
      unlinked = step.handed;
    }
  }

  /**
   * Move the lease end (`add` ms to it, set it `at` a Unix time, or `in` ms
   * from now) and give every member the new expiry, chunk by chunk. A lease
   * end that is not in the future closes the lifetime, and so does a
   * StaticLifetime part's heartbeat that finds its lease ran out while the
   * part was in use (lua/includes/staticLapse.lua). Returns the expiry the
   * members now carry (the lease end; a static part's plus its outage
   * margin), or the end that ended it, and whether the lifetime ended.
   * `token` identifies the call (the same token is applied once); `progress`
   * learns the new end as soon as the first step applied it.
   */
  async extend(
    mode: 'add' | 'at' | 'in',
    ms: number,
    endedTtlMs: number,
    token: string = randomId(),
    progress: { applied?: number } = {},
  ): Promise<{ expiresAtMs: number; ended: boolean }> {
    const scripts = this.connector.scripts;
    const context = this.context;
    const foreign = this.foreignMode;
    const count = lifetimeTuning.chunk;
    // The token makes a resend of this call (after a lost reply, by ioredis or
    // by the library while a cluster reconfigures, or the caller's retry of an
    // extend that failed: ./lease.ts) apply nothing twice.
    const first = await scripts.run('lifetimeExtend', { ...this.sets, futures: this.futures, dedupe: this.dedupe }, { mode, ms, count, foreign, token }, context);
    progress.applied = first.expiresAtMs;
    if (first.cursor === 'close') {
      await this.close(endedTtlMs);
      return { expiresAtMs: first.expiresAtMs, ended: true };
    }
    // On Redis Cluster each step names the foreign members of its chunk,
    // for this side to expire on their masters (nothing to do on one Redis).
    const expiry = new ForeignExpiry(this.connector, this.id, context);
    await expiry.apply(first.found, first.expiresAtMs, first.capped);
    let cursor = first.cursor;
    while (cursor !== 'done') {
      const step = await scripts.run('lifetimeExpireChunk', this.sets, { cursor, count, foreign }, context);
      await expiry.observe(step.expiresAtMs);
      await expiry.apply(step.found, step.expiresAtMs, step.capped);
      cursor = step.cursor;
    }
    await expiry.settle(() => this.membersExpireAt());
    // Its deduped objects, if any, get the new end on the lifetime's references.
    if (first.deduped) await extendAll(this, first.expiresAtMs);
    return { expiresAtMs: first.expiresAtMs, ended: false };
  }

  /** The state Redis holds (one HGET). */
  async state(): Promise<LifetimeState> {
    const state = await this.connector.command('HGET', { lifetime: this.id }, () => this.connector.client.hget(this.meta, 'state'));
    return asState(state);
  }

  /** The meta fields (one HMGET; attach needs them all). */
  async read(): Promise<{ state: LifetimeState; kind: string | undefined; name: string | undefined }> {
    const fields = await this.connector.command('HMGET', { lifetime: this.id }, () => this.connector.client.hmget(this.meta, 'state', 'kind', 'name'));
    const [state, kind, name] = fields;
    return {
      state: asState(state ?? null),
      kind: kind ?? undefined,
      name: name ? name : undefined,
    };
  }
}

function asState(state: string | null): LifetimeState {
  return state === 'open' || state === 'closing' || state === 'ended' ? state : undefined;
}

/** Split `addKey`'s arguments into keys and the trailing options (a plain object). */
export function splitAddKeyArgs(args: AddKeyArgs, lifetimeId: string): { keys: string[]; store: Store | undefined } {
  const last: unknown = args[args.length - 1];
  const isOptions =
    typeof last === 'object' && last !== null && !proxyState(last) && Object.getPrototypeOf(last) === Object.prototype;
  const keys = (isOptions ? args.slice(0, -1) : args) as unknown[];
  if (isOptions) checkOptions('addKey', last, ['store']);
  for (const key of keys) {
    if (proxyState(key)) {
      throw new InvalidOptionsError(`lifetime ${lifetimeId}: addKey takes store keys, got a proxy: use addProxy`, { lifetime: lifetimeId });
    }
    try {
      validateKey(key);
    } catch (err) {
      throw new InvalidOptionsError(`lifetime ${lifetimeId}: addKey takes store keys, ${(err as Error).message}`, { lifetime: lifetimeId });
    }
  }
  return { keys: keys as string[], store: isOptions ? (last as AddKeyOptions).store : undefined };
}

/** The proxy states of `proxies`; ProxyStoreFactoryError (as ProxyStore) for anything not made by a store. */
export function statesOf(proxies: unknown[], lifetimeId: string): ProxyState[] {
  return proxies.map((proxy) => {
    const state = proxyState(proxy);
    if (!state) {
      const what = proxy === null ? 'null' : typeof proxy === 'object' ? 'an object that is not a store proxy' : `a ${typeof proxy}`;
      throw new ProxyStoreFactoryError(
        `lifetime ${lifetimeId}: addProxy takes proxies made by a store (store.proxy, proxyFromKey, fromRef), got ${what}`,
        { lifetime: lifetimeId },
      );
    }
    checkHandles([state], lifetimeId); // an OwnedProxy binds its object; a borrow cannot
    return state;
  });
}

/** The error for an operation on a lifetime that was closed through this very handle (no need to ask Redis). */
export function closedHereError(lifetimeId: string, name: string | undefined, operation: string): LifetimeEndedError {
  const who = name ? `lifetime ${lifetimeId} ("${name}")` : `lifetime ${lifetimeId}`;
  return new LifetimeEndedError(`${who} was closed in this process, so ${operation} is refused: use a new lifetime`, { lifetime: lifetimeId });
}

/** How long an 'ended' marker lives: the store's tombstone TTL (both only serve error messages). */
export function endedTtlMs(store: Store): number {
  return Math.max(1, Math.round(store.tombstoneTtl * 1000));
}
