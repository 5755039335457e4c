/**
 * The foreign members of a lifetime on Redis Cluster: objects added with
 * `addKey`/`addProxy`/`proxyFromKey` from other hash tags, so other slots,
 * usually other masters. No lifetime script can touch them there (CROSSSLOT):
 * the scripts only record and pop them, as strings in the lifetime's own
 * slot, and the functions here apply the per-object effect (an expiry, an
 * eviction) on the masters that own them, one pipeline per master, sent in
 * parallel. Each command touches one object (a memberExpire or memberEnd
 * script on its keys, which treats an owned object as an owned member: its
 * owner is bound or ended, never its object deleted under a live borrow, see
 * docs/lifetimes.md, "Owned objects in lifetimes"), so each is atomic for
 * its object; nothing here is atomic across objects or together with the
 * lifetime's script.
 * The order of the two steps is what keeps every crash window safe: see
 * docs/lifetimes.md, "On Redis Cluster".
 *
 * @module
 */
import type { ChainableCommander } from 'ioredis';
import type { ErrorContext } from '../errors.js';
import type { RedisConnector } from '../redis/connector.js';
import type { CappedMember } from '../redis/scripts.js';

/** A lease end meaning "not an open lease (any more)": the close, or Redis itself, takes over. */
export const NO_LEASE = -1;

/**
 * Queue `per` commands per key (each on that key or a key of its slot), one
 * pipeline per master (following a reshard or failover until the command
 * timeout: ../redis/batch.ts); the replies, by key (an array of `per`
 * replies each when `per` > 1). Each command is safe to send twice.
 */
async function perNode(
  connector: RedisConnector,
  keys: readonly string[],
  queue: (pipeline: ChainableCommander, key: string, j: number) => void,
  operation: string,
  context: ErrorContext,
  per = 1,
  write = true,
): Promise<unknown[]> {
  const commands = keys.flatMap((key) => Array.from({ length: per }, (_, j) => ({ key, queue: (p: ChainableCommander) => queue(p, key, j) })));
  const out = await connector.batch(commands, operation, context, write);
  return per === 1 ? out : keys.map((_, i) => out.slice(i * per, (i + 1) * per));
}

/** The keys of the object whose data key is `data`, as memberExpire and memberEnd take them. */
function memberKeys(connector: RedisConnector, data: string): { data: string; rules: string; record: string; leases: string } {
  const k = connector.keys;
  return { data, rules: k.beside(data, 'rules'), record: k.beside(data, 'own'), leases: k.beside(data, 'lease') };
}

/**
 * Which of data keys `keys` have an ownership record (an owned object, or
 * one its lifetime ended and whose borrows still run): one single-key
 * EXISTS each, one pipeline per master. Single-key commands follow a slot
 * migration's ASK; the memberExpire and memberEnd scripts declare an
 * object's four keys, and during a migration Redis answers TRYAGAIN to a
 * multi-key call whose keys are only partly there, as they are for every
 * plain object (no record, no leases). So only objects with a record go
 * through those scripts, and plain ones get single-key commands, as before
 * owned members existed. An object owned between the two steps is treated
 * as plain: the lifetime still bounds it (its expiry, or its close).
 */
async function withRecord(connector: RedisConnector, keys: readonly string[], context: ErrorContext): Promise<Set<string>> {
  const replies = await perNode(connector, keys, (p, key) => void p.exists(connector.keys.beside(key, 'own')), 'EXISTS (foreign members)', context, 1, false);
  return new Set(keys.filter((_, i) => Number(replies[i]) > 0));
}

/**
 * Give each of `members` (data keys, with their own end, 0 for none) the
 * expiry `atMs` on its master: a plain object the earlier of it and its own
 * end, on its data key and its rules record; an owned one is bound to the
 * lifetime instead (lua/memberExpire.lua; `atMs` NO_LEASE: bound without a
 * lease, and plain ones are left alone). `recorded`: the keys known to have
 * an ownership record (a probe just made); without it, {@link withRecord}
 * asks.
 */
async function memberExpire(
  connector: RedisConnector,
  members: readonly CappedMember[],
  lifetimeId: string,
  atMs: number,
  context: ErrorContext,
  recorded?: ReadonlySet<string>,
): Promise<void> {
  const scripts = connector.scripts;
  const ownEnds = new Map(members.map((m) => [m.key, m.ownEnd]));
  const keys = [...ownEnds.keys()];
  if (keys.length === 0) return;
  const owned = recorded ?? (await withRecord(connector, keys, context));
  const ownedKeys = keys.filter((key) => owned.has(key));
  const plainKeys = atMs === NO_LEASE ? [] : keys.filter((key) => !owned.has(key));
  await Promise.all([
    ownedKeys.length === 0
      ? undefined
      : perNode(
          connector,
          ownedKeys,
          (p, key) =>
            scripts.queue(p, 'memberExpire', memberKeys(connector, key), { lifetime: lifetimeId, atMs, ownEnd: ownEnds.get(key) ?? 0 }),
          'memberExpire (foreign members)',
          context,
        ).then((replies) => {
          for (const reply of replies) scripts.decode('memberExpire', reply);
        }),
    plainKeys.length === 0
      ? undefined
      : perNode(
          connector,
          plainKeys,
          (p, key, j) => {
            const ownEnd = ownEnds.get(key) ?? 0;
            const t = ownEnd > 0 ? Math.min(atMs, ownEnd) : atMs;
            // The data key, and its rules record (a missing one stays missing).
            void p.pexpireat(j === 0 ? key : connector.keys.beside(key, 'rules'), t);
          },
          'PEXPIREAT (foreign members)',
          context,
          2,
        ),
  ]);
}

/**
 * Bind the owned objects of data keys `keys` to a lifetime without a lease
 * (a ContextLifetime): their records name it, and its close ends them.
 * `recorded` as for {@link memberExpire}.
 */
export async function bindForeign(
  connector: RedisConnector,
  keys: readonly string[],
  lifetimeId: string,
  context: ErrorContext,
  recorded?: ReadonlySet<string>,
): Promise<void> {
  await memberExpire(connector, keys.map((key) => ({ key, ownEnd: 0 })), lifetimeId, NO_LEASE, context, recorded);
}

/** What a Cluster add learns of a foreign key on its master before the lifetime records it. */
export interface ForeignProbe {
  /** Whether it is owned (an ownership record whose lifetime did not end it). */
  owned: boolean;
  /** The lifetime an owned object is bound to already, if any. */
  boundTo: string | undefined;
  /** An owned object's bound (`until`, Unix ms), if any: its own end. */
  untilMs: number | undefined;
  /** Its expiry (Unix ms), or undefined: none (or the key is missing). */
  expiresAtMs: number | undefined;
  /** Whether it has a rules record (a reads: n budget). */
  rules: boolean;
  /** Whether it has an ownership record at all (owned, or ended by its lifetime with borrows left). */
  record: boolean;
}

/**
 * For each of `keys` (store keys of foreign members): whether it is owned
 * (and bound to which lifetime, until when), its expiry and whether it has a
 * rules record (HMGET, PEXPIRETIME, EXISTS: one pipeline per master, sent in
 * parallel).
 */
export async function probeForeign(connector: RedisConnector, keys: readonly string[], context: ErrorContext): Promise<ForeignProbe[]> {
  const replies = (await perNode(
    connector,
    keys.map((key) => connector.dataKey(key)),
    (p, data, j) => {
      if (j === 0) p.hmget(connector.keys.beside(data, 'own'), 'owner', 'lt', 'ended', 'until');
      else if (j === 1) p.pexpiretime(data);
      else p.exists(connector.keys.beside(data, 'rules'));
    },
    'HMGET, PEXPIRETIME, EXISTS (foreign members)',
    context,
    3,
  )) as unknown[][];
  return replies.map(([record, at, rules]) => {
    const [owner, lt, ended, until] = (record as (string | null)[] | null) ?? [];
    // An owner whose bound passed has ended (the next script on the object says so).
    const over = until !== null && until !== undefined && Number(until) <= Date.now();
    const owned = owner !== null && owner !== undefined && (ended === null || ended === undefined) && !over;
    return {
      owned,
      boundTo: owned && lt ? lt : undefined,
      untilMs: owned && until ? Number(until) : undefined,
      expiresAtMs: Number(at) > 0 ? Number(at) : undefined,
      rules: Number(rules) > 0,
      record: ((record as (string | null)[] | null) ?? []).some((v) => v !== null),
    };
  });
}

/**
 * End the objects of `keys` (data keys) for the closing lifetime
 * `lifetimeId`, one pipeline per master: a plain object is unlinked with its
 * rules record (two single-key UNLINKs), an owned one is ended as an owned
 * member by lua/memberEnd.lua (its owner ends; the object goes now, or when
 * its last borrow ends); {@link withRecord} tells them apart. Returns how
 * many objects existed.
 */
export async function unlinkForeign(connector: RedisConnector, keys: readonly string[], lifetimeId: string, context: ErrorContext): Promise<number> {
  if (keys.length === 0) return 0;
  const scripts = connector.scripts;
  const owned = await withRecord(connector, keys, context);
  const ownedKeys = keys.filter((key) => owned.has(key));
  const plainKeys = keys.filter((key) => !owned.has(key));
  const [ended, unlinked] = await Promise.all([
    ownedKeys.length === 0
      ? 0
      : perNode(
          connector,
          ownedKeys,
          (p, key) => scripts.queue(p, 'memberEnd', memberKeys(connector, key), { lifetime: lifetimeId }),
          'memberEnd (foreign members)',
          context,
        ).then((replies) => replies.reduce<number>((n, r) => n + scripts.decode('memberEnd', r), 0)),
    plainKeys.length === 0
      ? 0
      : perNode(
          connector,
          plainKeys,
          (p, key, j) => void p.unlink(j === 0 ? key : connector.keys.beside(key, 'rules')),
          'UNLINK (foreign members)',
          context,
          2,
        ).then((replies) => replies.reduce<number>((n, r) => n + Number((r as unknown[])[0]), 0)),
  ]);
  return ended + unlinked;
}

/**
 * Gives foreign members a lifetime's lease end while other processes may
 * move that end. An expiry sent from the client lands after the script
 * reply it was read from, so an extend that runs in between can be
 * overtaken: its own walk sets the new end, then a late PEXPIREAT puts back
 * the old one. So every batch applied stays pending until a later reading of
 * the lease end (the next script reply, or {@link settle}'s HMGET) shows the
 * same end; if the end moved, the pending keys get the new end and wait for
 * the next reading. An extend that starts after a matching reading walks
 * those keys itself, after it.
 */
export class ForeignExpiry {
  /** Members given the last end and not yet confirmed (ownEnd 0: none, else they get the earlier of the two). */
  private pending: CappedMember[] = [];
  private at = NO_LEASE;

  constructor(
    private readonly connector: RedisConnector,
    private readonly lifetimeId: string,
    private readonly context: ErrorContext,
  ) {}

  private get waiting(): boolean {
    return this.pending.length > 0;
  }

  /**
   * Give `keys` the lease end `atMs`, as read from Redis just before (the
   * last {@link observe}d one), and each of `capped` the earlier of it and
   * its own end (with its rules record). They stay pending until a reading
   * confirms it. `recorded`: which of them have an ownership record, when a
   * probe just told (see memberExpire).
   */
  async apply(keys: readonly string[], atMs: number, capped: readonly CappedMember[] = [], recorded?: ReadonlySet<string>): Promise<void> {
    if (this.waiting && atMs !== this.at) {
      // Cannot happen after observe(atMs); keep every pending key on one end anyway.
      await this.moved(atMs);
    }
    this.at = atMs;
    if (atMs === NO_LEASE || (keys.length === 0 && capped.length === 0)) return;
    const members = [...keys.map((key) => ({ key, ownEnd: 0 })), ...capped];
    this.pending.push(...members);
    await memberExpire(this.connector, members, this.lifetimeId, atMs, this.context, recorded);
  }

  /** A new reading of the lease end: confirms the pending keys, or gives them the new end. */
  async observe(atMs: number): Promise<void> {
    if (!this.waiting) {
      this.at = atMs;
      return;
    }
    if (atMs === this.at) this.pending = [];
    else await this.moved(atMs);
  }

  /**
   * The lease end moved (or may have: an A-B-A change between two readings
   * looks like no change to {@link observe}): give it to the pending keys,
   * which wait for the next reading.
   */
  async moved(atMs: number): Promise<void> {
    this.at = atMs;
    if (atMs === NO_LEASE) {
      // A close evicts them, or the lease end already passed: nothing to keep in step with.
      this.pending = [];
      return;
    }
    if (this.waiting) await memberExpire(this.connector, this.pending, this.lifetimeId, atMs, this.context);
  }

  /** Read the lease end until it confirms the pending keys. */
  async settle(read: () => Promise<number>): Promise<void> {
    while (this.waiting) await this.observe(await read());
  }
}
