/**
 * How store keys map to Redis keys.
 *
 * A store key is the string `put` returns. Each key has a *tag*: the part
 * before the first `~`, or the whole key when it has none. Keys put under a
 * lifetime are `<lifetimeId>~<random>`, so a lifetime and its own objects
 * share one tag. Every Redis key of an object (data, ownership record,
 * consume tombstone) is
 *
 *     <namespace>:{<tag>}:<kind>:<key>
 *
 * so they all share one Redis Cluster hash tag and one script can touch them
 * together. Braces and `%` in tags and keys are percent-encoded so a key can
 * never break the hash tag (an empty or truncated tag would scatter an
 * object's records over several slots).
 *
 * @module
 */
import { randomFillSync } from 'node:crypto';
import { InvalidOptionsError } from './errors.js';

/**
 * Kinds of Redis keys that belong to one object: its data, its ownership
 * record, its handle leases and its recently finished ownership calls (owned
 * objects: how a resent release, drop, abandon or update recognises itself),
 * and the command line's gc evictions, so a resend recognises itself), its
 * consume tombstone and the grace copy of a consumed object (whose Redis key
 * also names the consumer's token: {@link KeySpace.graceCopy}), and its rules
 * record: what may end it besides an eviction, as a hash that later rules add
 * fields to (today `reads` left and `of` given for a `reads: n` object, and
 * `t:<token>`, the read number each consumer got, so a resent read is
 * recognised). It exists only when a rule needs it, and always expires with
 * the data key. A future also has its signal stream (`sig`), written with its
 * result (or by its lifetime's close), on which waiters block. A deduped
 * object (`dedupe: true`, src/dedupe/) has `refs` instead of a rules record:
 * its references, a sorted set (reference -> its end), which expires with
 * the data key; its `done` set remembers its recent evicts. A chunked
 * object's chunks are written to a staging hash first (`stage`, whose Redis
 * key also names the write id: {@link KeySpace.stageKey}), renamed onto the
 * data key by the script that commits them (docs/large-objects.md).
 */
export type ObjectKeyKind = 'd' | 'own' | 'lease' | 'done' | 'tomb' | 'grace' | 'rules' | 'sig' | 'refs' | 'stage';

/**
 * Kinds of Redis keys that belong to one lifetime: its meta hash, the set of
 * its own members (store keys inside its hash tag), the set of its foreign
 * members (whole data keys of objects in other hash tags, kept apart because
 * on Redis Cluster the client applies their expiry and eviction on their own
 * nodes), the sorted set of members that have their own end or a rules
 * record (`ends`: member, named as in its set, scored by its own end in Unix
 * ms, or {@link NO_OWN_END}), so that an extend never carries a member past
 * its own end and a close takes its rules record along, and, during a close
 * on Redis Cluster, the foreign members handed to a closer and not yet
 * unlinked, the set of its futures that have no result yet (`futures`:
 * own member names), whose signal its close writes, and the deduped objects
 * it holds a reference to (`dedupe`: their store keys; its end releases
 * those references instead of deleting them).
 */
export type LifetimeKeyKind = 'lt' | 'members' | 'foreign' | 'ends' | 'evicting' | 'futures' | 'dedupe';

/**
 * The score in a lifetime's `ends` set of a member that has a rules record
 * but no own end (the largest expiry the library hands to Redis).
 */
export const NO_OWN_END = 9_999_999_999_999;

const SEPARATOR = '~';

// Random ids come from a pool refilled 4 KiB at a time: one randomBytes(16)
// call per key cost more than the rest of a put.
const pool = Buffer.allocUnsafe(4096);
let poolOffset = pool.length;

/** 128 random bits from the CSPRNG, URL-safe base64 (22 characters). */
export function randomId(): string {
  if (poolOffset + 16 > pool.length) {
    randomFillSync(pool);
    poolOffset = 0;
  }
  const id = pool.toString('base64url', poolOffset, poolOffset + 16);
  // Never hand out the same bytes twice.
  pool.fill(0, poolOffset, poolOffset + 16);
  poolOffset += 16;
  return id;
}

/** A fresh store key, optionally inside a lifetime's tag. */
export function newKey(lifetimeId?: string): string {
  return lifetimeId === undefined ? randomId() : `${lifetimeId}${SEPARATOR}${randomId()}`;
}

/** The hash-tag part of a store key. */
export function tagOf(key: string): string {
  const i = key.indexOf(SEPARATOR);
  return i > 0 ? key.slice(0, i) : key;
}

function encode(part: string): string {
  return part.replace(/[%{}]/g, (c) => (c === '%' ? '%25' : c === '{' ? '%7B' : '%7D'));
}

/**
 * Check a namespace: non-empty, no braces (they would break hash tags), no
 * whitespace or control characters, at most 128 characters.
 */
export function validateNamespace(namespace: unknown): string {
  if (typeof namespace !== 'string' || namespace.length === 0) {
    throw new InvalidOptionsError(`namespace must be a non-empty string, got ${JSON.stringify(namespace)}`);
  }
  if (/[{}]/.test(namespace)) {
    throw new InvalidOptionsError(
      `namespace ${JSON.stringify(namespace)} contains a brace: braces would break the Redis Cluster hash tags of its keys`,
    );
  }
  // eslint-disable-next-line no-control-regex
  if (/[\s\x00-\x1f\x7f]/.test(namespace) || namespace.length > 128) {
    throw new InvalidOptionsError(
      `namespace ${JSON.stringify(namespace)} must have no whitespace or control characters and at most 128 characters`,
    );
  }
  return namespace;
}

/** Check a store key given by a caller. */
export function validateKey(key: unknown): string {
  if (typeof key !== 'string' || key.length === 0) {
    throw new InvalidOptionsError(`a store key must be a non-empty string, got ${describe(key)}`);
  }
  return key;
}

const LIFETIME_ID = /^[A-Za-z0-9_-]{1,128}$/;

/**
 * Check a lifetime id given by a caller (`ContextLifetime.attach`): ids are
 * {@link randomId}s, and nothing but URL-safe base64 characters may appear
 * in one, so the id is its own hash tag and never needs encoding.
 */
export function validateLifetimeId(id: unknown): string {
  if (typeof id !== 'string' || !LIFETIME_ID.test(id)) {
    throw new InvalidOptionsError(
      `not a lifetime id: ${describe(id)} (expected the \`id\` of a lifetime: 1-128 characters of A-Z a-z 0-9 _ -)`,
      typeof id === 'string' ? { lifetime: id } : {},
    );
  }
  return id;
}

function describe(value: unknown): string {
  if (typeof value === 'string') return JSON.stringify(value);
  if (value === null || value === undefined) return String(value);
  return typeof value;
}

/** Builds the Redis keys of one namespace. */
export class KeySpace {
  constructor(readonly namespace: string) {
    validateNamespace(namespace);
  }

  /** A Redis key of an object. */
  object(kind: ObjectKeyKind, key: string): string {
    return `${this.namespace}:{${encode(tagOf(key))}}:${kind}:${encode(key)}`;
  }

  /**
   * The Redis key of the grace copy that the consumer with `token` left when
   * it consumed `key`: `<ns>:{<tag>}:grace:<key>:<token>` (tokens have no ':').
   */
  graceCopy(key: string, token: string): string {
    return `${this.object('grace', key)}:${token}`;
  }

  /**
   * The Redis key of the staging hash of the chunked write `writeId` of
   * `key`: `<ns>:{<tag>}:stage:<key>:<writeId>` (write ids have no ':').
   */
  stageKey(key: string, writeId: string): string {
    return `${this.object('stage', key)}:${writeId}`;
  }

  /**
   * The Redis key of `kind` of the object whose data key is `dataKey`
   * (`<ns>:{<tag>}:d:<key>` gives `<ns>:{<tag>}:<kind>:<key>`): foreign
   * members are known by their data keys only.
   */
  beside(dataKey: string, kind: ObjectKeyKind): string {
    const at = dataKey.indexOf('}:d:');
    if (at < 0) throw new InvalidOptionsError(`not a data key: ${JSON.stringify(dataKey)}`);
    return `${dataKey.slice(0, at + 2)}${kind}:${dataKey.slice(at + 4)}`;
  }

  /** A Redis key of a lifetime. */
  lifetime(kind: LifetimeKeyKind, lifetimeId: string): string {
    return `${this.namespace}:{${encode(lifetimeId)}}:${kind}`;
  }

  /** The SCAN pattern matching every key of this namespace. */
  pattern(): string {
    return `${this.namespace.replace(/[*?[\]\\]/g, (c) => `\\${c}`)}:*`;
  }
}
