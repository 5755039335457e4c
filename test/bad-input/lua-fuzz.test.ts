/**
 * Adversarial ARGV at every script, by raw EVAL, from a seeded state (an
 * owned and borrowed object, a plain one, a missing one; an open context
 * lifetime, an open lease, a closing or ended one, a StaticLifetime part
 * whose lease runs, lapsed in a silence, or lapsed while in use, none). For
 * every call:
 *
 * - the reply is a success or a coded `PSR_<CODE> message` error, never a
 *   bare Lua error;
 * - a call that fails changes nothing at all (Redis never rolls a script
 *   back, so every check must come before the first write);
 * - a call that succeeds leaves no key without a TTL, except the keys of an
 *   open ContextLifetime, which live until it is closed by design.
 *
 * KEYS are the keys of one object or one lifetime, as the library builds
 * them; a script whose header names a KEY this file does not know fails
 * here until the KEY is added to {@link KEY_KINDS}.
 */
import fc from 'fast-check';
import type { Redis } from 'ioredis';
import { LUA_SCRIPTS } from '../../src/generated/lua.js';
import { randomId } from '../../src/keys.js';
import { describe, expect, test } from '../harness/fixtures.js';

type ScriptName = keyof typeof LUA_SCRIPTS;
const NAMES = Object.keys(LUA_SCRIPTS) as ScriptName[];

const CODED = /^PSR_[A-Z_]+ \S/;
const LUA_TRACE = /user_script|script: [0-9a-f]{40}|stack traceback|@enable_strict_lua/;

/** The lifetime every seeded object lives in the hash tag of (so one script can reach them all). */
const LT = 'fuzzLifetime0001';
const OBJ = `${LT}~obj`;
const CLONE = `${LT}~copy`;
const NEW = `${LT}~new`;

/** A deduped object (dedupe: true): its key is a hash, its own hash tag. */
const DEDUPED = `sha256.${'A'.repeat(42)}Q`;

const OWNER = 'ownerTokenAAAAAAAAAAAA';
const BORROW = 'borrowTokenBBBBBBBBBBB';
const HOLDER = 'holderTokenCCCCCCCCCCC';

/**
 * KEY name (as script headers name them) to the Redis key it stands for,
 * relative to `<namespace>:`. One object (OBJ) and one lifetime (LT), all
 * in one hash tag.
 */
const KEY_KINDS: Record<string, string> = {
  data: `{${LT}}:d:${OBJ}`,
  // A script's staging hash of a chunked value (includes/writeData.lua): the data key itself
  // says "the value is in ARGV", the common case the scripts' fuzzing keeps exercising.
  stage: `{${LT}}:d:${OBJ}`,
  record: `{${LT}}:own:${OBJ}`,
  leases: `{${LT}}:lease:${OBJ}`,
  tombstone: `{${LT}}:tomb:${OBJ}`,
  // The grace copy of the consumer whose token is OWNER (one of the plausible tokens).
  grace: `{${LT}}:grace:${OBJ}:${OWNER}`,
  done: `{${LT}}:done:${OBJ}`,
  rules: `{${LT}}:rules:${OBJ}`,
  refs: `{${LT}}:refs:${OBJ}`,
  newData: `{${LT}}:d:${CLONE}`,
  newRecord: `{${LT}}:own:${CLONE}`,
  newLeases: `{${LT}}:lease:${CLONE}`,
  newDone: `{${LT}}:done:${CLONE}`,
  meta: `{${LT}}:lt`,
  members: `{${LT}}:members`,
  foreign: `{${LT}}:foreign`,
  ends: `{${LT}}:ends`,
  evicting: `{${LT}}:evicting`,
  futures: `{${LT}}:futures`,
  signal: `{${LT}}:sig:${OBJ}`,
  dedupe: `{${LT}}:dedupe`,
};
/** The KEYS of the dedupe* scripts: the deduped object's. */
const DEDUPE_KEY_KINDS: Record<string, string> = {
  data: `{${DEDUPED}}:d:${DEDUPED}`,
  refs: `{${DEDUPED}}:refs:${DEDUPED}`,
  done: `{${DEDUPED}}:done:${DEDUPED}`,
};
/**
 * Variadic KEYS: a data key inside the lifetime, and the seeded object's
 * (with their ownership and rules records and leases, for `objects`; with their rules
 * records, for `items`, which lifetimePut takes with reads >= 2 and refuses
 * as data keys otherwise).
 */
const REST_KEYS: Record<string, string[]> = {
  data: [`{${LT}}:d:${NEW}`, `{${LT}}:d:${OBJ}`],
  objects: [
    `{${LT}}:d:${NEW}`,
    `{${LT}}:own:${NEW}`,
    `{${LT}}:rules:${NEW}`,
    `{${LT}}:lease:${NEW}`,
    `{${LT}}:d:${OBJ}`,
    `{${LT}}:own:${OBJ}`,
    `{${LT}}:rules:${OBJ}`,
    `{${LT}}:lease:${OBJ}`,
  ],
  // (a data key, its rules key and its staging key: the data key, for a value in ARGV)
  items: [`{${LT}}:d:${NEW}`, `{${LT}}:rules:${NEW}`, `{${LT}}:d:${NEW}`],
};


/** Plausible values per ARGV name, so that calls get past the first check often enough to reach the next. */
function plausible(arg: string, now: number): string[] {
  switch (arg) {
    case 'key':
    case 'member':
      return [OBJ];
    case 'owner':
      return [OWNER, BORROW];
    case 'token':
      return [OWNER, BORROW, randomId()];
    case 'holder':
      return [HOLDER, randomId()];
    case 'ttlMs':
    case 'graceMs':
    case 'endedTtlMs':
    case 'signalTtlMs':
      return ['30000', '1', '0'];
    case 'ms':
      return ['60000', String(now + 60_000), String(now - 1000)];
    case 'count':
      return ['10', '1'];
    case 'minIdle':
      return ['0'];
    case 'consumer':
      return ['{"pid":1}'];
    case 'kind':
      return ['context', 'lease', 'static'];
    case 'expiry':
      return ['none', 'in', 'at'];
    case 'mode':
      return ['add', 'at', 'in', 'hold', 'transit'];
    case 'foreign':
      return ['touch', 'return'];
    case 'cursor':
      return ['m:0', 'f:0', 'done'];
    case 'write':
    case 'inline':
      return ['0', '1'];
    case 'reads':
      return ['1', '2', '3'];
    case 'values':
    case 'value':
      return ['bytes'];
    case 'manifest':
      return ['1:2048:2:1024:fuzzWrite', '1:10:1:1024:fuzzWrite'];
    case 'lifetime':
      return [LT];
    case 'atMs':
      return ['0', String(now + 60_000), String(now - 1000), '-1'];
    case 'ownEnd':
      return ['0', String(now + 30_000), '9999999999999'];
    case 'ref':
      return [`p:${OWNER}`, `l:${LT}`, `p:${randomId()}`];
    case 'action':
      return ['release', 'extend'];
    case 'keepMs':
      return ['10000', '1'];
    case 'keys':
      return [DEDUPED];
    case 'elsewhere':
      return [`{other}:d:x`, '0', String(now + 30_000), '9999999999999'];
    default:
      return [randomId(), 'v'];
  }
}

const HOSTILE = [
  '',
  '0',
  '-1',
  '1.5',
  '1e3',
  '1e20',
  'inf',
  '-inf',
  'nan',
  '0x10',
  ' 5',
  '5 ',
  '5\n',
  '9999999999999999',
  '99999999999999999999',
  '-9999999999999999',
  'a b',
  '{}',
  '\u0000',
  '\u00e9',
];

function argValue(arg: string, now: number): fc.Arbitrary<string> {
  return fc.oneof(
    { weight: 3, arbitrary: fc.constantFrom(...plausible(arg, now)) },
    { weight: 2, arbitrary: fc.constantFrom(...HOSTILE) },
    { weight: 1, arbitrary: fc.string({ maxLength: 24 }) },
  );
}

/**
 * Lifetime seeds: 'static' is a StaticLifetime part whose lease runs;
 * 'staticSilent' one whose lease end passed while nothing touched it (an
 * outage: scripts grant a fresh lease); 'staticStopped' one whose lease end
 * passed although it was touched lately (its heartbeat stopped: it has ended).
 * 'reads' is a plain object with a reads budget (3 of 3, its rules record
 * expiring with it); 'leaseRules' a lease whose member has a reads budget
 * (2 of 3, one consumer recorded) and its own end before the lease's, listed
 * in the lifetime's `ends`; 'contextRules' the same under a ContextLifetime,
 * with no TTL anywhere.
 */
type Seed =
  | 'empty'
  | 'plain'
  | 'owned'
  | 'borrowed'
  | 'orphan'
  | 'context'
  | 'lease'
  | 'closing'
  | 'ended'
  | 'static'
  | 'staticSilent'
  | 'staticStopped'
  | 'reads'
  | 'leaseRules'
  | 'contextRules'
  | 'ownedMember'
  | 'ownedEnded'
  | 'deduped';
const SEEDS: Seed[] = [
  'empty',
  'plain',
  'owned',
  'borrowed',
  'orphan',
  'context',
  'lease',
  'closing',
  'ended',
  'static',
  'staticSilent',
  'staticStopped',
  'reads',
  'leaseRules',
  'contextRules',
  'ownedMember',
  'ownedEnded',
  'deduped',
];
const STATIC_LEASE = 10_000;

/** Write a seeded state the way the library lays it out. */
async function seed(redis: Redis, ns: string, kind: Seed, now: number): Promise<void> {
  const k = (rel: string) => `${ns}:${rel}`;
  const horizon = now + 60_000;
  const p = redis.pipeline();
  if (kind === 'plain') p.set(k(KEY_KINDS.data!), 'value', 'PX', 60_000);
  if (kind === 'deduped') {
    // Held by a put without an end (no TTL, by design), a put ending soon, and a lease lifetime (LT, open).
    p.set(k(DEDUPE_KEY_KINDS.data!), 'value');
    p.zadd(k(DEDUPE_KEY_KINDS.refs!), 9_999_999_999_999, `p:${OWNER}`, now + 30_000, `p:${BORROW}`, horizon, `l:${LT}`);
    p.hset(k(KEY_KINDS.meta!), 'state', 'open', 'kind', 'lease', 'name', '', 'createdAt', now, 'expiresAt', horizon);
    p.sadd(k(KEY_KINDS.dedupe!), DEDUPED);
    for (const rel of [KEY_KINDS.meta!, KEY_KINDS.dedupe!]) p.pexpireat(k(rel), horizon);
  }
  if (kind === 'reads') {
    p.set(k(KEY_KINDS.data!), 'value', 'PXAT', horizon);
    p.hset(k(KEY_KINDS.rules!), 'reads', 3, 'of', 3);
    p.pexpireat(k(KEY_KINDS.rules!), horizon);
  }
  if (kind === 'leaseRules' || kind === 'contextRules') {
    const lease = kind === 'leaseRules';
    const ownEnd = now + 30_000;
    p.hset(k(KEY_KINDS.meta!), 'state', 'open', 'kind', lease ? 'lease' : 'context', 'name', '', 'createdAt', now);
    p.set(k(KEY_KINDS.data!), 'value');
    p.sadd(k(KEY_KINDS.members!), OBJ);
    p.hset(k(KEY_KINDS.rules!), 'reads', 2, 'of', 3, `t:${BORROW}`, 1);
    p.zadd(k(KEY_KINDS.ends!), lease ? ownEnd : 9_999_999_999_999, OBJ);
    if (lease) {
      p.hset(k(KEY_KINDS.meta!), 'expiresAt', horizon);
      for (const rel of [KEY_KINDS.meta!, KEY_KINDS.members!, KEY_KINDS.ends!]) p.pexpireat(k(rel), horizon);
      for (const rel of [KEY_KINDS.data!, KEY_KINDS.rules!]) p.pexpireat(k(rel), ownEnd);
    }
  }
  if (kind === 'ownedMember' || kind === 'ownedEnded') {
    // An owned own member of a lease, borrowed; or one whose lifetime ended its owner (kept for its borrow).
    const ended = kind === 'ownedEnded';
    p.hset(k(KEY_KINDS.meta!), 'state', ended ? 'ended' : 'open', 'kind', 'lease', 'name', '', 'createdAt', now);
    p.set(k(KEY_KINDS.data!), 'value', 'PXAT', horizon);
    p.hset(k(KEY_KINDS.record!), 'owner', ended ? '' : OWNER, 'mut', '', 'lt', LT, `h:${BORROW}`, HOLDER);
    if (ended) p.hset(k(KEY_KINDS.record!), 'ended', LT, 'endedAt', now, 'endedOwner', OWNER);
    else {
      p.hset(k(KEY_KINDS.record!), 'until', horizon, `h:${OWNER}`, HOLDER);
      p.zadd(k(KEY_KINDS.leases!), horizon, OWNER);
      p.hset(k(KEY_KINDS.meta!), 'expiresAt', horizon);
      p.sadd(k(KEY_KINDS.members!), OBJ);
      p.zadd(k(KEY_KINDS.ends!), 9_999_999_999_999, OBJ);
      for (const rel of [KEY_KINDS.members!, KEY_KINDS.ends!]) p.pexpireat(k(rel), horizon);
    }
    p.zadd(k(KEY_KINDS.leases!), horizon, BORROW);
    for (const rel of [KEY_KINDS.meta!, KEY_KINDS.record!, KEY_KINDS.leases!]) p.pexpireat(k(rel), horizon);
  }
  if (kind === 'owned' || kind === 'borrowed' || kind === 'orphan') {
    p.set(k(KEY_KINDS.data!), 'value', 'PXAT', horizon);
    const owner = kind === 'orphan' ? '' : OWNER;
    p.hset(k(KEY_KINDS.record!), 'owner', owner, 'mut', '', `h:${OWNER}`, HOLDER);
    if (kind !== 'orphan') p.zadd(k(KEY_KINDS.leases!), horizon, OWNER);
    if (kind !== 'owned') {
      p.zadd(k(KEY_KINDS.leases!), horizon, BORROW);
      p.hset(k(KEY_KINDS.record!), `h:${BORROW}`, HOLDER);
    }
    p.pexpireat(k(KEY_KINDS.record!), horizon);
    p.pexpireat(k(KEY_KINDS.leases!), horizon);
  }
  if (kind === 'context' || kind === 'lease' || kind === 'closing' || kind === 'ended') {
    const state = kind === 'closing' ? 'closing' : kind === 'ended' ? 'ended' : 'open';
    p.hset(k(KEY_KINDS.meta!), 'state', state, 'kind', kind === 'lease' ? 'lease' : 'context', 'name', '', 'createdAt', now);
    p.set(k(KEY_KINDS.data!), 'value');
    p.sadd(k(KEY_KINDS.members!), OBJ);
    if (kind === 'lease') {
      p.hset(k(KEY_KINDS.meta!), 'expiresAt', horizon);
      for (const rel of [KEY_KINDS.meta!, KEY_KINDS.members!, KEY_KINDS.data!]) p.pexpireat(k(rel), horizon);
    }
    if (kind === 'ended') {
      p.del(k(KEY_KINDS.members!), k(KEY_KINDS.data!));
      p.hset(k(KEY_KINDS.meta!), 'endedAt', now);
      p.pexpire(k(KEY_KINDS.meta!), 60_000);
    }
  }
  if (kind === 'static' || kind === 'staticSilent' || kind === 'staticStopped') {
    // As lifetimeCreate/lifetimeExtend leave a part: keys expire 2 leases after the lease end.
    const expiresAt = kind === 'static' ? now + STATIC_LEASE : now - 1000;
    const seen = kind === 'staticSilent' ? now - 2 * STATIC_LEASE : now - 100;
    const at = expiresAt + 2 * STATIC_LEASE;
    p.hset(k(KEY_KINDS.meta!), 'state', 'open', 'kind', 'static', 'name', '', 'createdAt', now - 60_000);
    p.hset(k(KEY_KINDS.meta!), 'expiresAt', expiresAt, 'lease', STATIC_LEASE, 'seen', seen);
    p.set(k(KEY_KINDS.data!), 'value');
    p.sadd(k(KEY_KINDS.members!), OBJ);
    for (const rel of [KEY_KINDS.meta!, KEY_KINDS.members!, KEY_KINDS.data!]) p.pexpireat(k(rel), at);
  }
  await p.exec();
}

interface KeyState {
  type: string;
  expireAt: number;
  dump: string;
}

/** Every key of the namespace: its type, absolute expiry (-1: none) and serialized value. */
async function snapshot(redis: Redis, ns: string): Promise<Map<string, KeyState>> {
  const keys = (await redis.keys(`${ns}:{*`)).sort();
  const p = redis.pipeline();
  for (const key of keys) {
    p.type(key);
    p.pexpiretime(key);
    p.dumpBuffer(key);
  }
  const replies = (await p.exec()) ?? [];
  const out = new Map<string, KeyState>();
  keys.forEach((key, i) => {
    const [type, expireAt, dump] = replies.slice(i * 3, i * 3 + 3).map((r) => r[1]);
    out.set(key, { type: String(type), expireAt: Number(expireAt), dump: (dump as Buffer | null)?.toString('hex') ?? '' });
  });
  return out;
}

/** Keys without a TTL that an open ContextLifetime explains: its own keys and its members' data. */
async function explainedWithoutTtl(redis: Redis, ns: string): Promise<Set<string>> {
  const explained = new Set<string>();
  const meta = `${ns}:${KEY_KINDS.meta}`;
  // A deduped object lives while a reference without an end holds it.
  const refs = `${ns}:${DEDUPE_KEY_KINDS.refs}`;
  if ((await redis.type(refs)) === 'zset' && (await redis.zrangebyscore(refs, 9_999_999_999_999, '+inf')).length > 0) {
    explained.add(refs);
    explained.add(`${ns}:${DEDUPE_KEY_KINDS.data}`);
  }
  const [state, expiresAt] = await redis.hmget(meta, 'state', 'expiresAt');
  if (state !== 'open' || expiresAt !== null) return explained;
  for (const rel of [KEY_KINDS.meta!, KEY_KINDS.members!, KEY_KINDS.foreign!, KEY_KINDS.ends!, KEY_KINDS.futures!, KEY_KINDS.dedupe!]) explained.add(`${ns}:${rel}`);
  for (const member of await redis.smembers(`${ns}:${KEY_KINDS.members}`)) {
    explained.add(`${ns}:{${LT}}:d:${member}`);
    explained.add(`${ns}:{${LT}}:rules:${member}`);
  }
  for (const data of await redis.smembers(`${ns}:${KEY_KINDS.foreign}`)) explained.add(data);
  return explained;
}

function keysFor(name: ScriptName, ns: string): string[] {
  const script = LUA_SCRIPTS[name];
  const keys = script.keys.map((kName: string) => {
    const rel = (name.startsWith('dedupe') ? DEDUPE_KEY_KINDS[kName] : undefined) ?? KEY_KINDS[kName];
    if (rel === undefined) throw new Error(`lua-fuzz: script ${name} has KEY "${kName}": add it to KEY_KINDS`);
    return `${ns}:${rel}`;
  });
  if (script.restKey !== null) {
    const rest = REST_KEYS[script.restKey];
    if (rest === undefined) throw new Error(`lua-fuzz: script ${name} has variadic KEYS "${script.restKey}": add them to REST_KEYS`);
    keys.push(...rest.map((rel) => `${ns}:${rel}`));
  }
  return keys;
}

describe('every script, fired with adversarial ARGV by raw EVAL', () => {
  test.for(NAMES)('%s: a coded error that changes nothing, or a success that leaves no key without a TTL', async (name, { redis, namespace }) => {
    const script = LUA_SCRIPTS[name];
    const now = Date.now();
    const keys = keysFor(name, namespace);
    const args = fc.tuple(...(script.args as readonly string[]).map((a) => argValue(a, now)));
    const rest = script.restArg === null ? fc.constant([] as string[]) : fc.array(argValue(script.restArg, now), { maxLength: 3 });
    await fc.assert(
      fc.asyncProperty(fc.constantFrom(...SEEDS), args, rest, async (seeded, fixed, more) => {
        const stale = await redis.keys(`${namespace}:{*`);
        if (stale.length > 0) await redis.del(...stale);
        await seed(redis, namespace, seeded, now);
        const before = await snapshot(redis, namespace);
        const argv = [...fixed, ...more];
        let error: string | undefined;
        try {
          await redis.eval(script.source, keys.length, ...keys, ...argv);
        } catch (err) {
          error = (err as Error).message;
        }
        const after = await snapshot(redis, namespace);
        const call = `${name} on a ${seeded} state with ARGV ${JSON.stringify(argv)}`;
        if (error !== undefined) {
          expect(error, call).toMatch(CODED);
          expect(error, call).not.toMatch(LUA_TRACE);
          expect(Object.fromEntries(after), `${call} failed with "${error}" after changing Redis`).toEqual(Object.fromEntries(before));
          return;
        }
        const explained = await explainedWithoutTtl(redis, namespace);
        // A reads: n object put with no ttl lives until its reads or an eviction end it, as a plain put does.
        if (name === 'objectPut' && argv[2] === '0') for (const rel of [KEY_KINDS.data!, KEY_KINDS.rules!]) explained.add(`${namespace}:${rel}`);
        const unexplained = [...after]
          .filter(([key, s]) => s.expireAt === -1 && !explained.has(key) && before.get(key)?.expireAt !== -1)
          .map(([key]) => key);
        expect(unexplained, `${call} succeeded and left keys without a TTL`).toEqual([]);
      }),
      { numRuns: 150 },
    );
    const left = await redis.keys(`${namespace}:{*`);
    if (left.length > 0) await redis.del(...left);
  });
});
