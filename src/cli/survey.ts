/**
 * What is in a namespace, found with read commands only.
 *
 * Two passes over the namespace, each a SCAN of every master in pages:
 *
 * 1. {@link indexNamespace}: every key but the data keys (only counted):
 *    lifetimes, owned objects, tombstones, keys the library did not write.
 * 2. {@link classifyData} over the data keys (`SCAN MATCH <ns>:{*}:d:*`), a
 *    page at a time: a data key is held when it has an ownership record or a
 *    handle lease, when it is an own member of the lifetime whose id is its
 *    hash tag (SISMEMBER on that lifetime's members set, in the same slot),
 *    when it is a deduped object with references (its `refs` set: its
 *    holders evict it), or when it is in some lifetime's foreign-member set. An object held by
 *    none of these but with an expiry (its own `ttl`, or the store's
 *    `defaultTtl`) goes by itself: it is "expiring", not an orphan. Foreign sets are read
 *    once, after pass 1, into memory up to {@link surveyTuning.foreignInMemory}
 *    members; larger ones are asked per page with SMISMEMBER. What is held by
 *    nothing is an orphan.
 *
 * Commands for one page go in one pipeline to the master that holds the page
 * (an object's keys and its tag's members set share one slot). Nothing here
 * reads an object's value, and none of these commands (SCAN, EXISTS, TYPE,
 * PTTL, SISMEMBER, OBJECT IDLETIME, ...) updates an object's access time, so
 * looking does not make objects look fresh to `gc --older-than`.
 *
 * @module
 */
import type { Redis } from 'ioredis';
import type { KeySpace } from '../keys.js';
import type { Connection } from './connect.js';
import { dataPattern, namespacePattern, parseKey, scanPages, stagingPattern, type ObjectKey } from './layout.js';

/** Bounds; mutable for tests only. @internal */
export const surveyTuning = {
  /** Foreign members (in total) read into memory; sets beyond are asked per page. */
  foreignInMemory: 200_000,
};

/** Which keys of a lifetime exist. */
export interface LifetimeKeys {
  meta: boolean;
  members: boolean;
  foreign: boolean;
  /**
   * Foreign members a closing lifetime on a Redis Cluster handed to a closer
   * to unlink (they are being evicted: gc may take them too, harmlessly).
   */
  evicting: boolean;
  /** Members with their own end (a ttl) or a rules record (reads: n). */
  ends: boolean;
  /** Futures made under the lifetime that have no result yet. */
  futures: boolean;
  /** Deduped objects it holds a reference to (released at its end). */
  dedupe: boolean;
}

/** Pass 1's result. */
export interface NamespaceIndex {
  lifetimes: Map<string, LifetimeKeys>;
  /** Store keys with an ownership record or handle leases. */
  owned: Set<string>;
  /** Store keys with a consume tombstone. */
  tombstones: Set<string>;
  /** Store keys with a grace copy (a consumed object kept for a lost reply's resend). */
  graces: Set<string>;
  /** Rules records seen (objects put with reads: n that are not used up yet; a SCAN may count one twice). */
  rules: number;
  /** Reference sets seen: deduped objects (dedupe: true) with references (a SCAN may count one twice). */
  deduped: number;
  /** Data keys seen (a SCAN may count one twice). */
  dataKeys: number;
  /** Staging hashes seen: chunked writes not committed (yet), see {@link classifyStaging} (a SCAN may count one twice). */
  staging: number;
  /** Keys under `<ns>:{` that the library did not write (gc leaves them alone). */
  unrecognized: { count: number; sample: string[] };
}

const UNRECOGNIZED_SAMPLE = 20;

/**
 * Pass 1. `onKeys(n)` after each page. With `lifetimesOnly` (gc), the keys of
 * owned objects, tombstones and grace copies are not kept: memory then grows
 * with the number of lifetimes only.
 */
export async function indexNamespace(
  conn: Connection,
  onKeys?: (n: number) => void,
  { lifetimesOnly = false }: { lifetimesOnly?: boolean } = {},
): Promise<NamespaceIndex> {
  const keys = conn.connector.keys;
  const index: NamespaceIndex = {
    lifetimes: new Map(),
    owned: new Set(),
    tombstones: new Set(),
    graces: new Set(),
    rules: 0,
    deduped: 0,
    dataKeys: 0,
    staging: 0,
    unrecognized: { count: 0, sample: [] },
  };
  for await (const page of scanPages(conn.masters(), namespacePattern(keys))) {
    for (const redisKey of page) {
      const parsed = parseKey(keys, redisKey);
      if (!parsed) {
        addUnrecognized(index, redisKey);
      } else if (parsed.type === 'lifetime') {
        let lt = index.lifetimes.get(parsed.id);
        if (!lt) index.lifetimes.set(parsed.id, (lt = { meta: false, members: false, foreign: false, evicting: false, ends: false, futures: false, dedupe: false }));
        lt[parsed.kind === 'lt' ? 'meta' : parsed.kind] = true;
      } else if (parsed.kind === 'd') {
        index.dataKeys++;
      } else if (parsed.kind === 'rules') {
        // Counted only: its object's data key says the rest (it expires and goes with it).
        index.rules++;
      } else if (parsed.kind === 'stage') {
        // Counted only: classifyStaging looks at each (a writer's, or left behind).
        index.staging++;
      } else if (parsed.kind === 'refs') {
        // Counted only, as rules records: the references of a deduped object hold it.
        index.deduped++;
      } else if (lifetimesOnly) {
        continue;
      } else if (parsed.kind === 'own' || parsed.kind === 'lease') {
        index.owned.add(parsed.key);
      } else if (parsed.kind === 'tomb') {
        index.tombstones.add(parsed.key);
      } else if (parsed.kind === 'done' || parsed.kind === 'sig') {
        // Recently finished calls (for resends), futures' signal and wake-up
        // streams: they expire by themselves, report nothing.
        continue;
      } else {
        index.graces.add(parsed.key);
      }
    }
    onKeys?.(page.length);
  }
  return index;
}

function addUnrecognized(index: NamespaceIndex, redisKey: string): void {
  index.unrecognized.count++;
  if (index.unrecognized.sample.length < UNRECOGNIZED_SAMPLE) index.unrecognized.sample.push(redisKey);
}

/** Foreign members of every lifetime: whole data keys. */
export interface ForeignIndex {
  /** Members of the sets read into memory. */
  inMemory: Set<string>;
  /** Sets too large to read, asked per page (SMISMEMBER). */
  asked: string[];
}

/** Read the foreign-member sets of `lifetimeIds`, the smallest first, into memory up to the budget. */
export async function loadForeignIndex(conn: Connection, lifetimeIds: Iterable<string>): Promise<ForeignIndex> {
  const client = conn.client;
  const sets = [...lifetimeIds].map((id) => conn.connector.keys.lifetime('foreign', id));
  const sizes = await Promise.all(sets.map((key) => client.scard(key)));
  const order = sets.map((key, i) => ({ key, size: sizes[i] as number })).filter((s) => s.size > 0);
  order.sort((a, b) => a.size - b.size);
  const index: ForeignIndex = { inMemory: new Set(), asked: [] };
  let budget = surveyTuning.foreignInMemory;
  for (const { key, size } of order) {
    if (size > budget) {
      index.asked.push(key);
      continue;
    }
    budget -= size;
    let cursor = '0';
    do {
      const [next, members] = await client.sscan(key, cursor, 'COUNT', 1000);
      cursor = next;
      for (const m of members) index.inMemory.add(m);
    } while (cursor !== '0');
  }
  return index;
}

/** An object that belongs to nothing. */
export interface Orphan {
  key: string;
  data: ObjectKey;
  /** Milliseconds until Redis expires it, or null: no TTL. */
  ttlMs: number | null;
  /** Seconds since it was last read or written (OBJECT IDLETIME), or null when Redis does not track it. */
  idleSeconds: number | null;
}

/** What one page of data keys held. */
export interface PageResult {
  /** Keys the page held (for progress). */
  scanned: number;
  /** Of those, objects: data keys the library wrote (strings, and hashes for chunked objects), held or not. */
  objects: number;
  /** Of the objects, chunked ones (their data key is a hash: manifest and chunks, src/chunks/). */
  chunked: number;
  orphans: Orphan[];
  /** Objects held by nothing but their own expiry (a ttl): they go by themselves. */
  expiring: number;
  /** Data keys that hold another Redis type than a string or a hash: not ours. */
  unrecognized: string[];
  /** Data keys held by an owner or a lifetime. */
  held: number;
}

type Reply = [Error | null, unknown];

function value(replies: Reply[], i: number): unknown {
  const [err, v] = replies[i] ?? [new Error('no reply'), null];
  if (err) throw err;
  return v;
}

/**
 * Whether a hash at a data key looks like a chunked object (src/chunks/): its
 * manifest is not read here (HGET would count as an access and make the object
 * look fresh to `gc --older-than`), but its chunks are at least 1,024 bytes,
 * over Redis's `hash-max-listpack-value` (64 by default), so Redis keeps it as
 * a `hashtable`; a hash of small fields (`listpack`, `ziplist` before Redis 7)
 * was not written by the library. gcEvict reads the manifest before it evicts.
 */
function isChunkedEncoding(reply: Reply | undefined): boolean {
  const [err, encoding] = reply ?? [null, null];
  return !err && encoding === 'hashtable';
}

/** Classify one page of data keys found on `node`. */
export async function classifyPage(conn: Connection, node: Redis, page: string[], foreign: ForeignIndex): Promise<PageResult> {
  const keys = conn.connector.keys;
  const objects: ObjectKey[] = [];
  const result: PageResult = { scanned: 0, objects: 0, chunked: 0, orphans: [], expiring: 0, unrecognized: [], held: 0 };
  for (const redisKey of page) {
    const parsed = parseKey(keys, redisKey);
    if (parsed?.type === 'object' && parsed.kind === 'd') objects.push(parsed);
    else result.unrecognized.push(redisKey);
  }
  result.scanned = page.length;
  if (objects.length === 0) return result;

  const first = node.pipeline();
  for (const o of objects) {
    first.type(o.redisKey);
    // An owner, a borrow, or (a deduped object) references: each holds it.
    first.exists(`${o.prefix}own:${o.name}`, `${o.prefix}lease:${o.name}`, `${o.prefix}refs:${o.name}`);
    first.sismember(`${o.prefix}members`, o.name);
    first.object('ENCODING', o.redisKey);
  }
  const r1 = ((await first.exec()) ?? []) as Reply[];
  const candidates: ObjectKey[] = [];
  objects.forEach((o, i) => {
    const type = value(r1, 4 * i);
    if (type === 'none') return; // gone since the SCAN
    if (type !== 'string' && !(type === 'hash' && isChunkedEncoding(r1[4 * i + 3]))) {
      result.unrecognized.push(o.redisKey);
      return;
    }
    result.objects++;
    if (type === 'hash') result.chunked++;
    if (Number(value(r1, 4 * i + 1)) > 0 || Number(value(r1, 4 * i + 2)) === 1 || foreign.inMemory.has(o.redisKey)) {
      result.held++;
      return;
    }
    candidates.push(o);
  });
  if (candidates.length === 0) return result;

  // Foreign sets too large for memory live in other slots: ask them through the (cluster) client.
  const heldForeign = new Set<number>();
  await Promise.all(
    foreign.asked.map(async (set) => {
      const flags = (await conn.client.smismember(set, ...candidates.map((c) => c.redisKey))) as number[];
      flags.forEach((f, i) => f === 1 && heldForeign.add(i));
    }),
  );
  const orphans = candidates.filter((_, i) => !heldForeign.has(i));
  result.held += heldForeign.size;
  if (orphans.length === 0) return result;

  const second = node.pipeline();
  for (const o of orphans) {
    second.pttl(o.redisKey);
    second.object('IDLETIME', o.redisKey);
  }
  const r2 = ((await second.exec()) ?? []) as Reply[];
  orphans.forEach((o, i) => {
    const ttl = Number(value(r2, 2 * i));
    if (ttl === -2) return; // gone since
    if (ttl >= 0) {
      // Its own ttl ends it: nothing is left behind, gc need not evict it.
      result.expiring++;
      return;
    }
    const [idleErr, idle] = r2[2 * i + 1] ?? [null, null];
    result.orphans.push({
      key: o.key,
      data: o,
      ttlMs: ttl >= 0 ? ttl : null,
      idleSeconds: idleErr || idle === null ? null : Number(idle),
    });
  });
  return result;
}

/**
 * Pass 2: every data key of the namespace, a page at a time (one SCAN page
 * per call of `onPage`, in order; the next page is read after `onPage` settles).
 */
export async function classifyData(
  conn: Connection,
  foreign: ForeignIndex,
  onPage: (result: PageResult) => Promise<void> | void,
): Promise<void> {
  const keys: KeySpace = conn.connector.keys;
  for (const node of conn.masters()) {
    for await (const page of scanPages([node], dataPattern(keys))) {
      await onPage(await classifyPage(conn, node, page, foreign));
    }
  }
}

/** The Redis server's clock, ms (leases and tombstones are in server time). */
export async function serverTimeMs(conn: Connection): Promise<number> {
  const [seconds, micros] = await conn.client.time();
  return Number(seconds) * 1000 + Math.floor(Number(micros) / 1000);
}

/**
 * A chunked write's staging hash (`<ns>:{<tag>}:stage:<key>:<write id>`,
 * src/chunks/): a writer sends its chunks there, then one script renames it
 * onto the data key. The first chunk creates it together with its TTL (one
 * MULTI) and every later chunk renews it, so a staging hash of a live (or
 * recently dead) writer always has a TTL and goes by itself. One without a TTL has no writer left (its TTL was
 * removed behind the library's back, e.g. PERSIST or a restore without TTLs):
 * it is stale, and gc evicts it.
 */
export interface StagingKey {
  /** The store key of the object being written. */
  key: string;
  redisKey: string;
  /** Milliseconds until Redis expires it, or null: no TTL (stale). */
  ttlMs: number | null;
  /** Seconds since it was last written (OBJECT IDLETIME), or null when Redis does not track it. */
  idleSeconds: number | null;
  /** The master that holds it. */
  node: Redis;
}

/** Every staging hash of the namespace, a SCAN page at a time (a key of another Redis type is not one). */
export async function classifyStaging(conn: Connection, onPage: (found: StagingKey[], scanned: number) => Promise<void> | void): Promise<void> {
  const keys: KeySpace = conn.connector.keys;
  for (const node of conn.masters()) {
    for await (const page of scanPages([node], stagingPattern(keys))) {
      const parsed = page.map((k) => parseKey(keys, k)).filter((p): p is ObjectKey => p?.type === 'object' && p.kind === 'stage');
      if (parsed.length === 0) {
        await onPage([], page.length);
        continue;
      }
      const pipe = node.pipeline();
      for (const p of parsed) {
        pipe.type(p.redisKey);
        pipe.pttl(p.redisKey);
        pipe.object('IDLETIME', p.redisKey);
      }
      const replies = ((await pipe.exec()) ?? []) as Reply[];
      const found: StagingKey[] = [];
      parsed.forEach((p, i) => {
        if (value(replies, 3 * i) !== 'hash') return; // gone since the SCAN, or not ours
        const ttl = Number(value(replies, 3 * i + 1));
        if (ttl === -2) return;
        const [idleErr, idle] = replies[3 * i + 2] ?? [null, null];
        found.push({ key: p.key, redisKey: p.redisKey, ttlMs: ttl >= 0 ? ttl : null, idleSeconds: idleErr || idle === null ? null : Number(idle), node });
      });
      await onPage(found, page.length);
    }
  }
}

/**
 * Unlink a stale staging hash if it still has no TTL (WATCH: a writer that
 * touched it since the check aborts the unlink). True when it was unlinked.
 * Sequential use only: WATCH is the connection's state.
 */
export async function unlinkStaleStaging(s: StagingKey): Promise<boolean> {
  await s.node.watch(s.redisKey);
  try {
    if ((await s.node.pttl(s.redisKey)) !== -1) return false;
    const replies = await s.node.multi().unlink(s.redisKey).exec();
    return replies !== null && Number(replies[0]?.[1]) === 1;
  } finally {
    await s.node.unwatch();
  }
}
