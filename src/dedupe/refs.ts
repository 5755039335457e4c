/**
 * The references of deduped objects (`dedupe: true`), in Redis: putting
 * equal bytes again adds a reference and sends no bytes when the object is
 * large, `evict` takes one reference, a lifetime holds one and releases it at
 * its end; the last reference deletes the object. The scripts are
 * lua/dedupe*.lua (lua/includes/dedupeRefs.lua says how references are
 * kept); this side only picks which to call.
 *
 * @module
 */
import { randomId } from '../keys.js';
import type { BatchCommand } from '../redis/batch.js';
import { MIN_BULK_LIMIT } from '../redis/limits.js';
import type { RedisConnector } from '../redis/connector.js';
import type { DedupeItem } from './key.js';

/**
 * Values up to this many bytes go with the first call (one round trip, bytes
 * sent even when the object is stored already); larger ones are first
 * offered by hash alone (dedupeAdd), and sent only when the object is
 * missing: equal bytes never travel twice. 64 KiB take about as long to send
 * as a round trip on a 1 Gbit/s network with 0.5 ms of latency.
 */
export const DEDUPE_INLINE_BYTES = 64 * 1024;

/** Who a reference belongs to and when it ends. */
export interface DedupeHolder {
  /** A put's call (its reference is `p:<token>`), or a lifetime (`l:<id>`). */
  ref: string;
  /** Milliseconds from now (server clock) until it ends, 0 for none. */
  ttlMs: number;
  /** When it ends (Unix ms), 0 for none. */
  atMs: number;
}

/** A put's reference, fresh per call (its token makes a resend add nothing more). */
export function putHolder(ttlMs: number | undefined): DedupeHolder {
  return { ref: `p:${randomId()}`, ttlMs: ttlMs ?? 0, atMs: 0 };
}

/** A lifetime's reference, ending at `atMs` (-1 or 0: when it is released). */
export function lifetimeHolder(lifetimeId: string, atMs: number): DedupeHolder {
  return { ref: `l:${lifetimeId}`, ttlMs: 0, atMs: atMs > 0 ? atMs : 0 };
}

function objectKeys(connector: RedisConnector, key: string): { data: string; refs: string } {
  return { data: connector.dataKey(key), refs: connector.keys.object('refs', key) };
}

/** Run one script call per object: alone, or as one batch (one pipeline per master on a Cluster). */
async function each<T>(connector: RedisConnector, commands: (BatchCommand & { run: () => Promise<T> })[], operation: string, decode: (reply: unknown) => T): Promise<T[]> {
  if (commands.length === 1) return [await (commands[0] as { run: () => Promise<T> }).run()];
  const replies = await connector.batch(commands, operation);
  return replies.map(decode);
}

/**
 * Store deduped objects, each holding one reference of `holders(i)` (a
 * put's: one token per value, so equal values of one batch hold one
 * reference each). Small values go with the first call; large ones are
 * offered by hash first and their bytes made and sent only when the object
 * is missing. Returns their keys, in order.
 */
export async function putDeduped(connector: RedisConnector, items: readonly DedupeItem[], holders: (i: number) => DedupeHolder): Promise<string[]> {
  const scripts = connector.scripts;
  const calls = items.map((item, i) => {
    const h = holders(i);
    return { item, objectKeys: objectKeys(connector, item.key), args: { ref: h.ref, ttlMs: h.ttlMs, atMs: h.atMs } };
  });
  // Large values: offered by hash first; sent only for the objects found missing.
  const large = calls.filter((c) => c.item.size > DEDUPE_INLINE_BYTES);
  const send = calls.filter((c) => c.item.size <= DEDUPE_INLINE_BYTES);
  if (large.length > 0) {
    const found = await each(
      connector,
      large.map((c) => ({
        key: c.objectKeys.data,
        queue: (p) => scripts.queue(p, 'dedupeAdd', c.objectKeys, c.args),
        run: () => scripts.run('dedupeAdd', c.objectKeys, c.args, { key: c.item.key }),
      })),
      'dedupeAdd',
      (r) => scripts.decode('dedupeAdd', r),
    );
    large.forEach((c, i) => {
      if (found[i] === 0) send.push(c);
    });
  }
  if (send.length > 0) {
    const values = send.map((c) => c.item.bytes());
    // (Values under the smallest limit a Redis can have need no check: no promise to wait for.)
    if (values.some((v) => v.length > MIN_BULK_LIMIT)) await connector.checkFits(values, 'put');
    await each(
      connector,
      send.map((c, i) => {
        const args = { ...c.args, value: values[i] as Buffer };
        return {
          key: c.objectKeys.data,
          queue: (p) => scripts.queue(p, 'dedupePut', c.objectKeys, args),
          run: () => scripts.run('dedupePut', c.objectKeys, args, { key: c.item.key }),
        };
      }),
      'dedupePut',
      (r) => scripts.decode('dedupePut', r),
    );
  }
  return items.map((item) => item.key);
}

/**
 * Add `holder`'s reference to objects already stored (no bytes sent); a
 * missing object is left missing. Returns, per key, whether it was stored.
 */
export async function addReferences(connector: RedisConnector, keys: string[], holder: DedupeHolder): Promise<boolean[]> {
  const scripts = connector.scripts;
  const args = { ref: holder.ref, ttlMs: holder.ttlMs, atMs: holder.atMs };
  const found = await each(
    connector,
    keys.map((key) => {
      const k = objectKeys(connector, key);
      return { key: k.data, queue: (p) => scripts.queue(p, 'dedupeAdd', k, args), run: () => scripts.run('dedupeAdd', k, args, { key }) };
    }),
    'dedupeAdd',
    (r) => scripts.decode('dedupeAdd', r),
  );
  return found.map((f) => f === 1);
}

/**
 * `evict` of a deduped object: take one put's reference (the one that would
 * keep it longest); the last reference deletes it. A resend (same token)
 * takes no second one. Returns 0 (nothing to take), 1 (taken) or 2 (taken,
 * and the object deleted).
 */
export function evictReference(connector: RedisConnector, key: string, token: string = randomId()): Promise<0 | 1 | 2> {
  const k = objectKeys(connector, key);
  return connector.scripts.run(
    'dedupeEvict',
    { ...k, done: connector.keys.object('done', key) },
    { token, keepMs: connector.commandDeadlineMs() },
    { key },
  );
}

/**
 * What a lifetime does with its references on `keys`: release them (its
 * end) or move their end to `atMs` (an extend; 0: none). Harmless when the
 * lifetime holds none. Returns, per key, 0 (none held), 1 (done) or 2
 * (released the last: deleted).
 */
export async function lifetimeReferences(
  connector: RedisConnector,
  keys: string[],
  lifetimeId: string,
  action: 'release' | 'extend',
  atMs = 0,
): Promise<(0 | 1 | 2)[]> {
  return holderReferences(connector, keys, `l:${lifetimeId}`, action, atMs, { lifetime: lifetimeId });
}

/** {@link lifetimeReferences} for any holder's reference (`l:<id>`, or `p:<token>`: a put taking back its own). */
export async function holderReferences(
  connector: RedisConnector,
  keys: string[],
  ref: string,
  action: 'release' | 'extend',
  atMs = 0,
  context: { lifetime?: string } = {},
): Promise<(0 | 1 | 2)[]> {
  if (keys.length === 0) return [];
  const scripts = connector.scripts;
  const args = { ref, action, atMs: action === 'extend' && atMs > 0 ? atMs : 0 };
  return each(
    connector,
    keys.map((key) => {
      const k = objectKeys(connector, key);
      return {
        key: k.data,
        queue: (p) => scripts.queue(p, 'dedupeHolder', k, args),
        run: () => scripts.run('dedupeHolder', k, args, { key, ...context }),
      };
    }),
    'dedupeHolder',
    (r) => scripts.decode('dedupeHolder', r),
  );
}
