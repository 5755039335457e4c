/**
 * Reading the library's key layout back (src/keys.ts builds it): which object
 * or lifetime a Redis key of the namespace belongs to, and SCAN over every
 * master in pages.
 *
 *     <ns>:{<tag>}:<kind>:<key>     kind d | own | lease | done | tomb | rules | refs
 *     <ns>:{<tag>}:grace:<key>:<token>
 *     <ns>:{<tag>}:stage:<key>:<write id>   a chunked write's staging hash
 *     <ns>:{<id>}:lt | members | foreign | ends | evicting | dedupe
 *
 * @module
 */
import type { Redis } from 'ioredis';
import type { KeySpace, LifetimeKeyKind, ObjectKeyKind } from '../keys.js';

/** A Redis key of one object. `name` is the key as it appears in the Redis key (percent-encoded). */
export interface ObjectKey {
  type: 'object';
  kind: ObjectKeyKind;
  redisKey: string;
  /** The store key, decoded. */
  key: string;
  /** The store key as encoded in the Redis key: an own member's name in its lifetime's set. */
  name: string;
  /** `<ns>:{<tag>}:`, the prefix of every Redis key of the object. */
  prefix: string;
}

/** A Redis key of one lifetime. */
export interface LifetimeKey {
  type: 'lifetime';
  kind: LifetimeKeyKind;
  redisKey: string;
  id: string;
}

export type ParsedKey = ObjectKey | LifetimeKey;

const OBJECT_KINDS: ReadonlySet<string> = new Set(['d', 'own', 'lease', 'done', 'tomb', 'grace', 'rules', 'sig', 'refs', 'stage']);
/** The consumer's token at the end of a grace key (see KeySpace.graceCopy). */
const GRACE_TOKEN = /:[A-Za-z0-9_-]{16,64}$/;
/** The write id at the end of a staging key (see KeySpace.stageKey). */
const WRITE_ID = /:[A-Za-z0-9_-]{1,64}$/;
const LIFETIME_KINDS: ReadonlySet<string> = new Set(['lt', 'members', 'foreign', 'ends', 'evicting', 'futures', 'dedupe']);
const LIFETIME_ID = /^[A-Za-z0-9_-]{1,128}$/;

function decode(part: string): string {
  return part.replace(/%(25|7B|7D)/g, (_, hex: string) => (hex === '25' ? '%' : hex === '7B' ? '{' : '}'));
}

/**
 * The object or lifetime a Redis key belongs to, or undefined for a key of
 * the namespace that proxystore-redis did not write (it round-trips through
 * {@link KeySpace} or it is not ours).
 */
export function parseKey(keys: KeySpace, redisKey: string): ParsedKey | undefined {
  const head = `${keys.namespace}:{`;
  if (!redisKey.startsWith(head)) return undefined;
  const close = redisKey.indexOf('}', head.length);
  if (close < 0 || redisKey[close + 1] !== ':') return undefined;
  const tag = redisKey.slice(head.length, close);
  const rest = redisKey.slice(close + 2);
  if (LIFETIME_KINDS.has(rest)) {
    if (!LIFETIME_ID.test(tag)) return undefined;
    return { type: 'lifetime', kind: rest as LifetimeKeyKind, redisKey, id: tag };
  }
  const colon = rest.indexOf(':');
  if (colon < 0) return undefined;
  const kind = rest.slice(0, colon);
  let name = rest.slice(colon + 1);
  // A grace copy's key ends with the token of the consumer that left it, a staging key with its write id.
  const token = kind === 'grace' ? (GRACE_TOKEN.exec(name)?.[0] ?? '') : kind === 'stage' ? (WRITE_ID.exec(name)?.[0] ?? '') : '';
  if ((kind === 'grace' || kind === 'stage') && token === '') return undefined;
  name = name.slice(0, name.length - token.length);
  if (!OBJECT_KINDS.has(kind) || name === '') return undefined;
  const key = decode(name);
  // Only what the library itself would have built.
  if (keys.object(kind as ObjectKeyKind, key) + token !== redisKey) return undefined;
  return { type: 'object', kind: kind as ObjectKeyKind, redisKey, key, name, prefix: redisKey.slice(0, close + 2) };
}

/** The SCAN pattern of the namespace's keys made by the library: `<ns>:{*`. */
export function namespacePattern(keys: KeySpace): string {
  // KeySpace.pattern() is `<escaped ns>:*`, which also matches a namespace
  // that starts with `<ns>:`; every key of ours continues with `{`.
  return `${keys.pattern().slice(0, -1)}{*`;
}

/** The SCAN pattern of the namespace's data keys. */
export function dataPattern(keys: KeySpace): string {
  return `${namespacePattern(keys)}}:d:*`;
}

/** The SCAN pattern of the namespace's staging hashes (chunked writes not committed yet). */
export function stagingPattern(keys: KeySpace): string {
  return `${namespacePattern(keys)}}:stage:*`;
}

/** The SCAN pattern of the lifetimes' foreign-member sets. */
export function foreignPattern(keys: KeySpace): string {
  return `${namespacePattern(keys)}}:foreign`;
}

/** Keys per SCAN call (a hint to Redis) and so about the size of a page. */
export const SCAN_COUNT = 1000;

/**
 * SCAN every master for `match`, one page (up to about {@link SCAN_COUNT}
 * keys, duplicates within a page removed) at a time. SCAN may return a key
 * twice while Redis resizes a table; callers cope with that.
 */
export async function* scanPages(masters: Redis[], match: string, count = SCAN_COUNT): AsyncGenerator<string[]> {
  for (const node of masters) {
    let cursor = '0';
    do {
      const [next, keys] = await node.scan(cursor, 'MATCH', match, 'COUNT', count);
      cursor = next;
      if (keys.length > 0) yield [...new Set(keys)];
    } while (cursor !== '0');
  }
}
