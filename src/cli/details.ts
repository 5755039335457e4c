/**
 * The rows of `inspect`: one lifetime, owned object or tombstone, read with
 * read commands only (HGETALL, ZRANGE ... WITHSCORES, SCARD, PTTL, EXISTS,
 * GET of a tombstone). These interfaces are the `--json` shape (docs/cli.md);
 * change them only compatibly, or bump {@link JSON_VERSION}.
 *
 * Tokens (of owners, borrows and consume calls) are capabilities: a holder
 * of one may release or update. They are never printed.
 *
 * @module
 */
import type { Cluster, Redis } from 'ioredis';
import { NO_OWN_END, type KeySpace } from '../keys.js';

/** The `version` field of every `--json` document. */
export const JSON_VERSION = 1;

/** Lifetime states; `missing`: its sets exist but its meta record does not. */
export type LifetimeStateName = 'open' | 'closing' | 'ended' | 'missing';

/** One lifetime. */
export interface LifetimeInfo {
  id: string;
  /** context | lease | static, or null when the meta record is missing. */
  kind: string | null;
  name: string | null;
  state: LifetimeStateName;
  /** Own members (objects put under the lifetime). */
  members: number;
  /** Foreign members (objects of other hash tags added with addKey). */
  foreignMembers: number;
  /** Of its members, those with their own end (a ttl, or the expiry they joined with) or a reads budget. */
  membersWithRules: number;
  /** Deduped objects (dedupe: true) it holds one reference on each, released at its end. */
  dedupedMembers: number;
  createdAtMs: number | null;
  /** The lease end (leases and the StaticLifetime's parts), Unix ms, server time. */
  expiresAtMs: number | null;
  /** Milliseconds until the lease end, or null without a lease. */
  timeLeftMs: number | null;
  closingAtMs: number | null;
  endedAtMs: number | null;
  /** Milliseconds until Redis forgets the meta record (a lease end, or an ended marker's expiry); null: no TTL. */
  metaTtlMs: number | null;
}

/** One handle of an owned object. */
export interface HandleInfo {
  role: 'owner' | 'mutable' | 'shared';
  /** Id of the store instance that renews the handle's lease (not a token). */
  holder: string | null;
  leaseEndsAtMs: number;
  leaseLeftMs: number;
}

/** One owned object. */
export interface OwnedInfo {
  key: string;
  /** Whether the object's bytes are still there. */
  dataPresent: boolean;
  /** Whether the owner's handle is alive (false once dropped while borrowed, or its lease ran out). */
  ownerPresent: boolean;
  sharedBorrows: number;
  mutableBorrow: boolean;
  /** When the last live lease ends: the object expires then unless renewed. Unix ms, server time. */
  leaseExpiresAtMs: number | null;
  leaseLeftMs: number | null;
  handles: HandleInfo[];
  /** The lifetime that bounds the owner (docs/lifetimes.md, "Owned objects in lifetimes"), or null. */
  lifetime: OwnedLifetime | null;
}

/** What an owned object's record says of the lifetime that bounds its owner. */
export interface OwnedLifetime {
  /** The lifetime's id, or null when unknown (an object owned with an expiry of its own, by intoOwned). */
  id: string | null;
  /** When the owner's bound passes (a lease's end), Unix ms, server time; null: only a close ends it. */
  untilMs: number | null;
  untilLeftMs: number | null;
  /** Whether the lifetime ended the owner (the object then lives on only for its borrows). */
  ended: boolean;
  endedAtMs: number | null;
}

/** The references of a deduped object (dedupe: true). */
export interface ReferencesInfo {
  /** References left (the object is deleted with the last). */
  count: number;
  /** Puts' references without an end: each goes by an evict. */
  withoutEnd: number;
  /** Puts' references that end by their ttl. */
  withTtl: number;
  /** Lifetimes holding a reference (released at their end). */
  lifetimes: string[];
  /** When the object expires unless a reference without an end holds it: the latest end, Unix ms; null: no end. */
  latestEndMs: number | null;
}

/** A deduped object's references (1 command); references whose end passed are not counted, as the scripts see them. */
export async function referencesInfo(client: Client, keys: KeySpace, key: string, nowMs: number): Promise<ReferencesInfo | null> {
  const flat = await client.zrange(keys.object('refs', key), 0, -1, 'WITHSCORES').catch(() => null);
  if (flat === null || flat.length === 0) return null;
  const info: ReferencesInfo = { count: 0, withoutEnd: 0, withTtl: 0, lifetimes: [], latestEndMs: null };
  let noEnd = false;
  for (let i = 0; i + 1 < flat.length; i += 2) {
    const ref = flat[i] as string;
    const end = Number(flat[i + 1]);
    if (!(end > nowMs)) continue;
    info.count++;
    if (end >= NO_OWN_END) noEnd = true;
    else info.latestEndMs = Math.max(info.latestEndMs ?? 0, end);
    if (ref.startsWith('l:')) info.lifetimes.push(ref.slice(2));
    else if (end >= NO_OWN_END) info.withoutEnd++;
    else info.withTtl++;
  }
  if (noEnd) info.latestEndMs = null;
  return info;
}

/** Who consumed an ephemeral object. */
export interface ConsumerJSON {
  pid: number | null;
  host: string | null;
  /** First stack frame outside the library, e.g. `/app/worker.ts:17:9`. */
  frame: string | null;
}

/** One consumed object's tombstone. */
export interface TombstoneInfo {
  key: string;
  consumer: ConsumerJSON;
  consumedAtMs: number | null;
  ageMs: number | null;
  /** Milliseconds until the tombstone expires. */
  expiresInMs: number | null;
  /** For an object put with `reads: n` (n >= 2): n, all read (the consumer shown took the last); null otherwise. */
  reads: number | null;
  /** Whether the consumed bytes still wait under the grace key (for a lost reply's resend). */
  graceCopy: boolean;
  graceExpiresInMs: number | null;
}

/** An object that belongs to nothing. */
export interface OrphanInfo {
  key: string;
  /** Milliseconds until Redis expires it; null: no TTL (it stays until evicted). */
  ttlMs: number | null;
  /** Seconds since it was last read or written (OBJECT IDLETIME); null where Redis does not track it. */
  idleSeconds: number | null;
}

type Client = Redis | Cluster;

function num(v: unknown): number | null {
  if (v === undefined || v === null || v === '') return null;
  const n = Number(v);
  return Number.isFinite(n) ? n : null;
}

function ttl(ms: number): number | null {
  return ms >= 0 ? ms : null;
}

/** A lifetime (5 commands, sent together). */
export async function lifetimeInfo(client: Client, keys: KeySpace, id: string, nowMs: number): Promise<LifetimeInfo> {
  const meta = keys.lifetime('lt', id);
  const [fields, metaTtl, members, foreign, ruled, deduped] = await Promise.all([
    client.hgetall(meta),
    client.pttl(meta),
    client.scard(keys.lifetime('members', id)),
    client.scard(keys.lifetime('foreign', id)),
    client.zcard(keys.lifetime('ends', id)),
    client.scard(keys.lifetime('dedupe', id)),
  ]);
  const state = fields.state;
  const expiresAtMs = num(fields.expiresAt);
  return {
    id,
    kind: fields.kind ?? null,
    name: fields.name ? fields.name : null,
    state: state === 'open' || state === 'closing' || state === 'ended' ? state : 'missing',
    members,
    foreignMembers: foreign,
    membersWithRules: ruled,
    dedupedMembers: deduped,
    createdAtMs: num(fields.createdAt),
    expiresAtMs,
    timeLeftMs: expiresAtMs === null || state !== 'open' ? null : Math.max(0, expiresAtMs - nowMs),
    closingAtMs: num(fields.closingAt),
    endedAtMs: num(fields.endedAt),
    metaTtlMs: ttl(metaTtl),
  };
}

/** An owned object (3 commands). Leases that ended but were not purged yet count as gone, as the scripts see them. */
export async function ownedInfo(client: Client, keys: KeySpace, key: string, nowMs: number): Promise<OwnedInfo> {
  const [record, leases, exists] = await Promise.all([
    client.hgetall(keys.object('own', key)),
    client.zrange(keys.object('lease', key), 0, -1, 'WITHSCORES'),
    client.exists(keys.object('d', key)),
  ]);
  const owner = record.owner ?? '';
  const mut = record.mut ?? '';
  const handles: HandleInfo[] = [];
  for (let i = 0; i + 1 < leases.length; i += 2) {
    const token = leases[i] as string;
    const end = Number(leases[i + 1]);
    if (!(end > nowMs)) continue;
    handles.push({
      role: token === owner ? 'owner' : token === mut ? 'mutable' : 'shared',
      holder: record[`h:${token}`] ?? null,
      leaseEndsAtMs: end,
      leaseLeftMs: end - nowMs,
    });
  }
  const last = handles.reduce<number | null>((m, h) => (m === null || h.leaseEndsAtMs > m ? h.leaseEndsAtMs : m), null);
  const order = { owner: 0, mutable: 1, shared: 2 };
  handles.sort((a, b) => order[a.role] - order[b.role] || a.leaseEndsAtMs - b.leaseEndsAtMs);
  return {
    key,
    dataPresent: exists === 1,
    ownerPresent: handles.some((h) => h.role === 'owner'),
    sharedBorrows: handles.filter((h) => h.role === 'shared').length,
    mutableBorrow: handles.some((h) => h.role === 'mutable'),
    leaseExpiresAtMs: last,
    leaseLeftMs: last === null ? null : last - nowMs,
    handles,
    lifetime: ownedLifetime(record, nowMs),
  };
}

/** The lifetime fields of an ownership record (lt, until, ended, endedAt: lua/includes/lifetimeBound.lua). */
function ownedLifetime(record: Record<string, string>, nowMs: number): OwnedLifetime | null {
  const until = num(record.until);
  const endedBy = record.ended;
  if (record.lt === undefined && until === null && endedBy === undefined) return null;
  const id = endedBy !== undefined && endedBy !== '-' ? endedBy : (record.lt ?? null);
  // A bound that passed ends the owner at the next script on the object: shown as ended.
  const ended = endedBy !== undefined || (until !== null && until <= nowMs);
  return {
    id,
    untilMs: until,
    untilLeftMs: until === null || ended ? null : until - nowMs,
    ended,
    endedAtMs: num(record.endedAt) ?? (ended ? until : null),
  };
}

/**
 * Parse a tombstone `"<consumedAtMs> <token> [<reads> ]<consumer JSON>"`
 * (src/consumer.ts; `<reads>` for the last read of a reads: n object); the
 * token is dropped.
 */
export function parseTombstone(text: string): { consumedAtMs: number | null; consumer: ConsumerJSON; reads: number | null } {
  const m = /^(\d+) \S+ (?:(\d+) )?([\s\S]*)$/.exec(text);
  let info: Record<string, unknown> = {};
  try {
    const parsed: unknown = JSON.parse(m?.[3] ?? '');
    if (parsed && typeof parsed === 'object') info = parsed as Record<string, unknown>;
  } catch {
    // A damaged tombstone still says the object was consumed.
  }
  return {
    consumedAtMs: m ? Number(m[1]) : null,
    reads: m?.[2] !== undefined ? Number(m[2]) : null,
    consumer: {
      pid: typeof info.pid === 'number' ? info.pid : null,
      host: typeof info.host === 'string' ? info.host : null,
      frame: typeof info.frame === 'string' ? info.frame : null,
    },
  };
}

/** A tombstone, or null if it expired meanwhile (3 commands). */
export async function tombstoneInfo(client: Client, keys: KeySpace, key: string, nowMs: number): Promise<TombstoneInfo | null> {
  const tomb = keys.object('tomb', key);
  const [text, tombTtl] = await Promise.all([
    // A tombstone key of another Redis type was not written by the library: skip it.
    client.get(tomb).catch((err: Error) => {
      if (/WRONGTYPE/.test(err.message)) return null;
      throw err;
    }),
    client.pttl(tomb),
  ]);
  if (text === null) return null;
  const { consumedAtMs, consumer, reads } = parseTombstone(text);
  // The grace copy is named after the consumer's token, which the tombstone records.
  const token = /^\d+ ([A-Za-z0-9_-]{16,64}) /.exec(text)?.[1];
  const graceTtl = token === undefined ? -2 : await client.pttl(keys.graceCopy(key, token));
  return {
    key,
    consumer,
    consumedAtMs,
    ageMs: consumedAtMs === null ? null : Math.max(0, nowMs - consumedAtMs),
    expiresInMs: ttl(tombTtl),
    reads,
    graceCopy: graceTtl !== -2,
    graceExpiresInMs: ttl(graceTtl),
  };
}
