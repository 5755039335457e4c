/**
 * The shortcuts of docs/performance.md "Round 3" keep every check: intArg
 * (string.find, no capture) accepts exactly what its earlier pattern did;
 * lifetimePut's `ends` probe is the first member's ZSCORE (or ZCARD) and
 * refuses a key of another type before any write; objectPut and dedupePut
 * ask one EXISTS of both keys and still drop a record left without its data.
 */
import fc from 'fast-check';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { LUA_SCRIPTS } from '../../src/generated/lua.js';
import { InvalidOptionsError, LeaseLifetime } from '../../src/index.js';
import { describe, expect, test } from '../harness/store-fixture.js';

const include = (name: string) => readFileSync(join(import.meta.dirname, '..', '..', 'lua', 'includes', `${name}.lua`), 'utf8');

/** intArg as it was before round 3 (string.match with a capture): the reference. */
const OLD_INT_ARG = `
local function oldIntArg(value, min, max)
  local digits = type(value) == 'string' and string.match(value, '^%-?([1-9]%d*)$')
  if value == '0' then digits = '0' end
  local n = digits and #digits <= 15 and tonumber(value)
  if not n or n < min or n > max then return nil end
  return n
end`;

/** Each ARGV through both: {new result or 'x', old result or 'x'} per value, numbers as %d text. */
const COMPARE = `${include('shown')}
${include('intArg').replace(/^--@include.*$/gm, '')}
${OLD_INT_ARG}
local out = {}
local min, max = tonumber(KEYS[1]), tonumber(KEYS[2])
for i = 1, #ARGV do
  local n = intArg('t', 'v', ARGV[i], min, max)
  local o = oldIntArg(ARGV[i], min, max)
  out[#out + 1] = n and string.format('%d', n) or 'x'
  out[#out + 1] = o and string.format('%d', o) or 'x'
end
return out`;

const EDGES = [
  '0', '-0', '00', '01', '1', '-1', '9', '10', '1e3', ' 5', '5 ', '+5', '0x10', 'inf', '1.5', '', '-',
  '9'.repeat(15), '9'.repeat(16), `-${'9'.repeat(15)}`, `-${'9'.repeat(16)}`, `1${'0'.repeat(14)}`, `1${'0'.repeat(15)}`,
  '9999999999999', '10000000000000', '1000000000', '1000000001', '-9999999999999',
];

describe('intArg', () => {
  test('accepts exactly what the earlier pattern accepted, with the same value', async ({ redis }) => {
    const bounds: [string, string][] = [['0', '9999999999999'], ['1', '1000000000'], ['-999999999999999', '999999999999999'], ['-99999999999999999', '99999999999999999']];
    const values = fc.sample(
      fc.oneof(fc.stringMatching(/^-?[0-9]{0,17}$/), fc.string({ maxLength: 18 }), fc.bigInt({ min: -(10n ** 17n), max: 10n ** 17n }).map(String)),
      { numRuns: 400, seed: 13 },
    );
    for (const [min, max] of bounds) {
      const reply = (await redis.eval(COMPARE, 2, min, max, ...EDGES, ...values)) as string[];
      for (let i = 0; i < reply.length; i += 2) expect([[...EDGES, ...values][i / 2], reply[i]]).toEqual([[...EDGES, ...values][i / 2], reply[i + 1]]);
    }
    // (The edges do reach both sides: some accepted, some refused.)
    const reply = (await redis.eval(COMPARE, 2, '-999999999999999', '999999999999999', ...EDGES)) as string[];
    expect(reply.filter((r, i) => i % 2 === 0 && r !== 'x').length).toBeGreaterThan(5);
    expect(reply.filter((r, i) => i % 2 === 0 && r === 'x').length).toBeGreaterThan(5);
  });
});

describe('lifetimePut: the ends probe', () => {
  test.for([
    ['with a ttl (its ZSCORE is the probe)', { reads: 3, ttl: 60 }],
    ['with a ttl and no reads', { ttl: 60 }],
    ['with reads and no ttl (ZCARD)', { reads: 3 }],
  ] as const)('an ends key of another type is refused %s, and nothing is written', async ([, options], { store, redis, namespace }) => {
    const lifetime = new LeaseLifetime(store, { expiry: 60 });
    await lifetime.waitUntilReady();
    const ends = `${namespace}:{${lifetime.id}}:ends`;
    const members = `${namespace}:{${lifetime.id}}:members`;
    await redis.set(ends, 'not a sorted set', 'PX', 60_000);
    const before = (await redis.keys(`${namespace}:{${lifetime.id}}:*`)).sort();
    const err = await store.put({ a: 1 }, { lifetime, ...options }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(InvalidOptionsError);
    expect((err as Error).message).toMatch(/:ends holds another Redis type: it is not one of a lifetime's keys/);
    expect((await redis.keys(`${namespace}:{${lifetime.id}}:*`)).sort()).toEqual(before);
    expect(await redis.exists(members)).toBe(0);
    await redis.unlink(ends);
    await lifetime.close();
  });

  test('a put with a ttl records its own end in ends, as text equal to the keys’ expiry', async ({ store, redis, namespace }) => {
    const lifetime = new LeaseLifetime(store, { expiry: 3600 });
    await lifetime.waitUntilReady();
    const key = await store.put({ a: 1 }, { lifetime, reads: 3, ttl: 60 });
    const ends = `${namespace}:{${lifetime.id}}:ends`;
    const score = Number(await redis.zscore(ends, key));
    expect(await redis.pexpiretime(`${namespace}:{${lifetime.id}}:d:${key}`)).toBe(score);
    expect(await redis.pexpiretime(`${namespace}:{${lifetime.id}}:rules:${key}`)).toBe(score);
    expect(await redis.hgetall(`${namespace}:{${lifetime.id}}:rules:${key}`)).toEqual({ reads: '3', of: '3' });
    await lifetime.close();
  });
});

describe('one EXISTS of both keys', () => {
  test('objectPut drops a rules record left without its data, and gives the new one the data’s expiry', async ({ redis, namespace }) => {
    const data = `${namespace}:{k}:d:k`;
    const rules = `${namespace}:{k}:rules:k`;
    await redis.hset(rules, 'reads', '1', 'of', '5', 't:stale', '4');
    await redis.pexpire(rules, 60_000);
    const reply = await redis.eval(LUA_SCRIPTS.objectPut.source, 3, data, rules, data, 'bytes', '3', '30000');
    expect(reply).toBe(1);
    expect(await redis.hgetall(rules)).toEqual({ reads: '3', of: '3' });
    expect(await redis.pexpiretime(rules)).toBe(await redis.pexpiretime(data));
    // Neither key there and no ttl: no expiry on either.
    const data2 = `${namespace}:{k2}:d:k2`;
    const rules2 = `${namespace}:{k2}:rules:k2`;
    expect(await redis.eval(LUA_SCRIPTS.objectPut.source, 3, data2, rules2, data2, 'bytes', '2', '0')).toBe(1);
    expect([await redis.pttl(data2), await redis.pttl(rules2)]).toEqual([-1, -1]);
    expect(await redis.hgetall(rules2)).toEqual({ reads: '2', of: '2' });
    await redis.unlink(data, rules, data2, rules2);
  });

  test('dedupePut drops references left without their data: the object has this one reference', async ({ redis, namespace }) => {
    const hash = 'sha256.' + 'A'.repeat(43);
    const data = `${namespace}:{${hash}}:d:${hash}`;
    const refs = `${namespace}:{${hash}}:refs:${hash}`;
    await redis.zadd(refs, '9999999999999', 'p:staleaaaaaaaaaaaaaaaa');
    const ref = 'p:freshaaaaaaaaaaaaaaaa';
    expect(await redis.eval(LUA_SCRIPTS.dedupePut.source, 2, data, refs, ref, '60000', '0', 'bytes')).toBe(2);
    expect(await redis.zrange(refs, 0, -1)).toEqual([ref]);
    const score = Number(await redis.zscore(refs, ref));
    expect(await redis.pexpiretime(data)).toBe(score);
    expect(await redis.pexpiretime(refs)).toBe(score);
    // Both there: a second reference, the expiry the latest end (none: no end).
    expect(await redis.eval(LUA_SCRIPTS.dedupePut.source, 2, data, refs, 'l:lifetime1', '0', '0', 'bytes')).toBe(1);
    expect(await redis.zscore(refs, 'l:lifetime1')).toBe('9999999999999');
    expect([await redis.pttl(data), await redis.pttl(refs)]).toEqual([-1, -1]);
    await redis.unlink(data, refs);
  });
});

describe('consume: the paths written out instead of local functions', () => {
  test('a malformed budget names the field at fault, reads first, and changes nothing', async ({ redis, namespace }) => {
    const token = 'tokenAAAAAAAAAAAAAAAAA';
    const keys = ['d:k', 'tomb:k', `grace:k:${token}`, 'rules:k', 'members', 'ends'].map((k) => `${namespace}:{k}:${k}`);
    await redis.set(keys[0] as string, 'bytes', 'PX', 60_000);
    for (const [reads, of, field] of [['1.5', '3', 'reads'], ['0', '3', 'reads'], ['x', 'x', 'reads'], ['3', '2', 'of'], ['2', 'x', 'of'], ['2', '01', 'of']]) {
      await redis.hset(keys[3] as string, 'reads', reads as string, 'of', of as string);
      const err = await redis.eval(LUA_SCRIPTS.consume.source, 6, ...keys, token, '{}', '1000', '1000').catch((e: Error) => e.message);
      expect(err).toBe(`PSR_SERIALIZATION consume: the rules record ${keys[3]} has a malformed ${field}: it was not written by proxystore-redis`);
      expect(await redis.hgetall(keys[3] as string)).toEqual({ reads, of });
      expect(await redis.get(keys[0] as string)).toBe('bytes');
      expect(await redis.exists(keys[1] as string, keys[2] as string)).toBe(0);
    }
    await redis.unlink(...keys);
  });

  test('a read of a reads: 3 object spends one and records the token; its resend spends none', async ({ redis, namespace }) => {
    const token = 'tokenBBBBBBBBBBBBBBBBB';
    const keys = ['d:k', 'tomb:k', `grace:k:${token}`, 'rules:k', 'members', 'ends'].map((k) => `${namespace}:{k}:${k}`);
    await redis.set(keys[0] as string, 'bytes', 'PX', 60_000);
    await redis.hset(keys[3] as string, 'reads', '3', 'of', '3');
    for (let i = 0; i < 2; i++) {
      expect(await redis.eval(LUA_SCRIPTS.consume.source, 6, ...keys, token, '{}', '1000', '1000')).toEqual([1, 'bytes']);
      expect(await redis.hgetall(keys[3] as string)).toEqual({ reads: '2', of: '3', [`t:${token}`]: '1' });
    }
    await redis.unlink(...keys);
  });
});
