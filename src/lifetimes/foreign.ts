/**
 * The foreign members of a lifetime on Redis Cluster: objects added with
 * `addKey`/`addProxy`/`proxyFromKey` from other hash tags, so other slots,
 * usually other masters. No lifetime script can touch them there (CROSSSLOT):
 * the scripts only record and pop them, as strings in the lifetime's own
 * slot, and the functions here apply the per-object effect (an expiry, an
 * eviction) on the masters that own them, one pipeline per master, sent in
 * parallel. Each command touches one key, so each is atomic for its key;
 * nothing here is atomic across keys or together with the lifetime's script.
 * The order of the two steps is what keeps every crash window safe: see
 * docs/lifetimes.md, "On Redis Cluster".
 *
 * @module
 */
import type { ChainableCommander } from 'ioredis';
import type { ErrorContext } from '../errors.js';
import type { RedisConnector } from '../redis/connector.js';

/** A lease end meaning "not an open lease (any more)": the close, or Redis itself, takes over. */
export const NO_LEASE = -1;

/**
 * Queue one single-key command per key, one pipeline per master (following
 * a reshard or failover until the command timeout: ../redis/batch.ts); the
 * replies, by key. Each command is safe to send twice.
 */
function perNode(
  connector: RedisConnector,
  keys: readonly string[],
  queue: (pipeline: ChainableCommander, key: string) => void,
  operation: string,
  context: ErrorContext,
): Promise<unknown[]> {
  return connector.batch(
    keys.map((key) => ({ key, queue: (p) => queue(p, key) })),
    operation,
    context,
  );
}

/** Give each of `keys` the expiry `atMs` (Unix ms); a missing key is left missing. */
export async function expireForeign(connector: RedisConnector, keys: readonly string[], atMs: number, context: ErrorContext): Promise<void> {
  await perNode(connector, keys, (p, key) => void p.pexpireat(key, atMs), 'PEXPIREAT (foreign members)', context);
}

/** Which of `keys` exist (one EXISTS per key, one pipeline per master, sent in parallel). */
export async function existingForeign(connector: RedisConnector, keys: readonly string[], context: ErrorContext): Promise<boolean[]> {
  const replies = await perNode(connector, keys, (p, key) => void p.exists(key), 'EXISTS (foreign members)', context);
  return replies.map((r) => Number(r) > 0);
}

/** Unlink `keys`; returns how many existed. */
export async function unlinkForeign(connector: RedisConnector, keys: readonly string[], context: ErrorContext): Promise<number> {
  const replies = await perNode(connector, keys, (p, key) => void p.unlink(key), 'UNLINK (foreign members)', context);
  return replies.reduce<number>((n, r) => n + Number(r), 0);
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
  private pending: string[] = [];
  private at = NO_LEASE;

  constructor(
    private readonly connector: RedisConnector,
    private readonly context: ErrorContext,
  ) {}

  /**
   * Give `keys` the lease end `atMs`, as read from Redis just before (the
   * last {@link observe}d one). They stay pending until a reading confirms it.
   */
  async apply(keys: readonly string[], atMs: number): Promise<void> {
    if (this.pending.length > 0 && atMs !== this.at) {
      // Cannot happen after observe(atMs); keep every pending key on one end anyway.
      await this.moved(atMs);
    }
    this.at = atMs;
    if (atMs === NO_LEASE || keys.length === 0) return;
    this.pending.push(...keys);
    await expireForeign(this.connector, keys, atMs, this.context);
  }

  /** A new reading of the lease end: confirms the pending keys, or gives them the new end. */
  async observe(atMs: number): Promise<void> {
    if (this.pending.length === 0) {
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
    if (this.pending.length > 0) await expireForeign(this.connector, this.pending, atMs, this.context);
  }

  /** Read the lease end until it confirms the pending keys. */
  async settle(read: () => Promise<number>): Promise<void> {
    while (this.pending.length > 0) await this.observe(await read());
  }
}
