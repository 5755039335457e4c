/**
 * Deduped objects in lifetimes. A deduped object lives in its own hash tag
 * and may be held by several holders at once, so a lifetime never deletes
 * it: it holds one reference on it (`l:<lifetime id>`, ending at its lease
 * end, or when released), and records the object's key in its `dedupe` set
 * (`<ns>:{<id>}:dedupe`). Its close releases those references (the last one
 * deletes the object), its extends move their end. Each object is reached
 * on its own master (one pipeline per master on a Redis Cluster), after the
 * lifetime's own script, in the order that keeps every crash window safe:
 *
 * - join: the set first (lifetimeAddDeduped: refused unless the lifetime is
 *   open; gives the lease end), then the reference on each object, then one
 *   look at the lifetime: closing or ended meanwhile, the references just
 *   added are released here (its close may have missed them); extended
 *   meanwhile, they get the new end. A crash before the look leaves
 *   references that end with the lease (a lease lifetime), or that its
 *   close releases (it finds them in the set);
 * - close: after the lifetime's own close finished (state ended: nothing
 *   joins any more), each recorded object's reference is released, then the
 *   key leaves the set; a crash half-way is finished by the next close
 *   (closing an ended lifetime runs this again);
 * - extend: after the lifetime's own extend, each recorded object's
 *   reference gets the new end.
 *
 * @module
 */
import type { RedisConnector } from '../redis/connector.js';
import { dedupeItem } from './key.js';
import { addReferences, lifetimeHolder, lifetimeReferences, putDeduped } from './refs.js';

/** Objects per step of a close or an extend. */
const STEP = 500;

/** What this module needs of a lifetime. */
export interface DedupeLifetime {
  readonly connector: RedisConnector;
  readonly id: string;
  readonly meta: string;
  /** When its members expire now (Unix ms; -1: no lease or not open). */
  membersExpireAt(): Promise<number>;
}

function setKey(lt: DedupeLifetime): string {
  return lt.connector.keys.lifetime('dedupe', lt.id);
}

/** Record `keys` in the lifetime (refused unless it is open); the expiry its members carry (-1: none). */
async function record(lt: DedupeLifetime, keys: string[]): Promise<number> {
  const reply = await lt.connector.scripts.run('lifetimeAddDeduped', { meta: lt.meta, dedupe: setKey(lt) }, { keys }, { lifetime: lt.id });
  return reply.expiresAtMs;
}

/** After the references were added: release them if the lifetime ended meanwhile, move them if it was extended. */
async function settle(lt: DedupeLifetime, keys: string[], given: number): Promise<void> {
  const connector = lt.connector;
  const state = await connector.command('HGET', { lifetime: lt.id }, () => connector.client.hget(lt.meta, 'state'));
  if (state !== 'open') {
    await lifetimeReferences(connector, keys, lt.id, 'release');
    return;
  }
  if (given < 0) return;
  const now = await lt.membersExpireAt();
  if (now > 0 && now !== given) await lifetimeReferences(connector, keys, lt.id, 'extend', now);
}

/** Put `values` as deduped objects held by the lifetime (one reference each object). Returns their keys. */
export async function putInLifetime(lt: DedupeLifetime, values: Buffer[]): Promise<string[]> {
  const items = values.map((v) => dedupeItem([v]));
  const keys = items.map((item) => item.key);
  const at = await record(lt, [...new Set(keys)]);
  await putDeduped(lt.connector, items, () => lifetimeHolder(lt.id, at));
  await settle(lt, keys, at);
  return keys;
}

/** Make the lifetime hold a reference on deduped objects already stored (addKey, addProxy, proxyFromKey). */
export async function addToLifetime(lt: DedupeLifetime, keys: string[]): Promise<void> {
  const unique = [...new Set(keys)];
  const at = await record(lt, unique);
  await addReferences(lt.connector, unique, lifetimeHolder(lt.id, at));
  await settle(lt, unique, at);
}

/** At the lifetime's end: release its reference on every recorded object. Returns how many objects that deleted. */
export async function releaseAll(lt: DedupeLifetime): Promise<number> {
  const connector = lt.connector;
  const set = setKey(lt);
  let deleted = 0;
  for (;;) {
    const keys = await connector.command('SRANDMEMBER', { lifetime: lt.id }, () => connector.client.srandmember(set, STEP));
    if (keys.length === 0) return deleted;
    const outcomes = await lifetimeReferences(connector, keys, lt.id, 'release');
    deleted += outcomes.filter((o) => o === 2).length;
    await connector.command('SREM', { lifetime: lt.id }, () => connector.client.srem(set, ...keys));
  }
}

/** After an extend: give the lifetime's reference on every recorded object the new end (`atMs`, Unix ms). */
export async function extendAll(lt: DedupeLifetime, atMs: number): Promise<void> {
  const connector = lt.connector;
  const set = setKey(lt);
  let cursor = '0';
  let any = false;
  do {
    const [next, keys] = await connector.command('SSCAN', { lifetime: lt.id }, () => connector.client.sscan(set, cursor, 'COUNT', STEP));
    cursor = next;
    any ||= keys.length > 0;
    await lifetimeReferences(connector, keys, lt.id, 'extend', atMs);
  } while (cursor !== '0');
  // The set lives as long as the lifetime's other keys (they got this end from the extend).
  if (any && atMs > 0) await connector.command('PEXPIREAT', { lifetime: lt.id }, () => connector.client.pexpireat(set, atMs));
}
