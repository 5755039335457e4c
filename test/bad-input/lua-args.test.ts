/**
 * Lua scripts called with missing or wrong-typed arguments answer a coded
 * `PSR_<CODE> message` error (which the TS layer maps to an error class),
 * never Redis's "script: <sha>, on @user_script:<line>" runtime error. Both
 * through the typed `connector.scripts.run(...)` and through raw EVAL of the
 * generated sources, as another client (or a bug) could call them.
 */
import fc from 'fast-check';
import type { Redis } from 'ioredis';
import { LUA_SCRIPTS } from '../../src/generated/lua.js';
import { errorFromReply } from '../../src/errors.js';
import { InvalidOptionsError, ProxyStoreError, SerializationError, type Store } from '../../src/index.js';
import { describe, expect, test } from '../harness/store-fixture.js';

type ScriptName = keyof typeof LUA_SCRIPTS;
const NAMES = Object.keys(LUA_SCRIPTS) as ScriptName[];

/** A coded script error: `PSR_<CODE> <message>`, with nothing of a Lua stack trace. */
const CODED = /^PSR_[A-Z_]+ \S/;
const LUA_TRACE = /user_script|script: [0-9a-f]{40}|stack traceback/;

/** The error message of a raw EVAL, or a failure if the call succeeded. */
async function evalError(redis: Redis, name: ScriptName, keys: string[], args: string[]): Promise<string> {
  try {
    const reply: unknown = await redis.eval(LUA_SCRIPTS[name].source, keys.length, ...keys, ...args);
    throw new Error(`script ${name} accepted ${keys.length} KEYS and ${args.length} ARGV and replied ${JSON.stringify(reply)}`);
  } catch (err) {
    return (err as Error).message;
  }
}

function keysOf(name: ScriptName, namespace: string): string[] {
  return LUA_SCRIPTS[name].keys.map((k) => `${namespace}:{lua-args}:${k}`);
}

function argsOf(name: ScriptName): string[] {
  return LUA_SCRIPTS[name].args.map(() => '1');
}

describe('every script, through raw EVAL', () => {
  test.for(NAMES)('%s answers a call with no KEYS and no ARGV with a coded error', async (name, { redis }) => {
    const message = await evalError(redis, name, [], []);
    expect(message).toMatch(CODED);
    expect(message).not.toMatch(LUA_TRACE);
  });

  test.for(NAMES)('%s answers a call missing its last KEY with a coded error', async (name, { redis, namespace }) => {
    const message = await evalError(redis, name, keysOf(name, namespace).slice(0, -1), argsOf(name));
    expect(message).toMatch(CODED);
    expect(message).not.toMatch(LUA_TRACE);
  });

  test.for(NAMES.filter((n) => LUA_SCRIPTS[n].args.length > 0))(
    '%s answers a call missing its last ARGV with a coded error',
    async (name, { redis, namespace }) => {
      const message = await evalError(redis, name, keysOf(name, namespace), argsOf(name).slice(0, -1));
      expect(message).toMatch(CODED);
      expect(message).not.toMatch(LUA_TRACE);
    },
  );

  test.for(NAMES)('a coded error of %s maps to an error class, not RedisOperationError', async (name, { redis }) => {
    const err = errorFromReply(new Error(await evalError(redis, name, [], [])), name);
    expect(err).toBeInstanceOf(ProxyStoreError);
    expect(err.code).not.toBe('REDIS_OPERATION');
  });
});

/** A valid consumer token, and the consume KEYS of object `k` for it. */
const TOKEN = 'tokenAAAAAAAAAAAAAAAAA';
function consumeKeys(namespace: string, token = TOKEN): [string, string, string, string, string, string] {
  return [
    `${namespace}:{lua-args}:d:k`,
    `${namespace}:{lua-args}:tomb:k`,
    `${namespace}:{lua-args}:grace:k:${token}`,
    ...consumeRest(namespace),
  ];
}
/** The consume KEYS after data, tombstone and grace: rules record, and the members and ends of the tag's lifetime. */
function consumeRest(namespace: string): [string, string, string] {
  return [`${namespace}:{lua-args}:rules:k`, `${namespace}:{lua-args}:members`, `${namespace}:{lua-args}:ends`];
}

describe('consume, through raw EVAL', () => {
  const badTtls = ['abc', '', '0', '-5', '1.5', '1e3', 'inf', 'nan', '0x10', ' 5', '5 ', '5\n', '9'.repeat(16), '\u00e9'];
  test.for(badTtls)('ttlMs %j is refused with PSR_INVALID_OPTIONS', async (ttl, { redis, namespace }) => {
    const message = await evalError(redis, 'consume', consumeKeys(namespace), [TOKEN, '{}', ttl, '1000']);
    expect(message).toMatch(/^PSR_INVALID_OPTIONS consume: ttlMs must be/);
    expect(message).not.toMatch(/[\r\n]/);
  });

  test.for(badTtls)('graceMs %j is refused with PSR_INVALID_OPTIONS', async (grace, { redis, namespace }) => {
    const message = await evalError(redis, 'consume', consumeKeys(namespace), [TOKEN, '{}', '1000', grace]);
    expect(message).toMatch(/^PSR_INVALID_OPTIONS consume: graceMs must be/);
  });

  test.for(['', 'two words', 'short', 'x'.repeat(65), 'tokenAAAAAAAAAAAAAA:AA'])('token %j is refused with PSR_INVALID_OPTIONS', async (token, { redis, namespace }) => {
    const message = await evalError(redis, 'consume', consumeKeys(namespace, token), [token, '{}', '1000', '1000']);
    expect(message).toMatch(/^PSR_INVALID_OPTIONS consume: token must be/);
  });

  test.for([
    ['the tombstone of another object', (ns: string) => [`${ns}:{lua-args}:d:k`, `${ns}:{lua-args}:tomb:other`, `${ns}:{lua-args}:grace:k:${TOKEN}`, ...consumeRest(ns)]],
    ['the grace key of another token', (ns: string) => consumeKeys(ns, 'tokenBBBBBBBBBBBBBBBBB')],
    ['a grace key without a token', (ns: string) => [`${ns}:{lua-args}:d:k`, `${ns}:{lua-args}:tomb:k`, `${ns}:{lua-args}:grace:k`, ...consumeRest(ns)]],
    ['keys that are no data key', (ns: string) => [`${ns}:data`, `${ns}:tomb`, `${ns}:grace`, ...consumeRest(ns)]],
    ['the rules record of another object', (ns: string) => [...consumeKeys(ns).slice(0, 3), `${ns}:{lua-args}:rules:other`, ...consumeRest(ns).slice(1)]],
    ['the members set of another tag', (ns: string) => [...consumeKeys(ns).slice(0, 4), `${ns}:{other}:members`, `${ns}:{lua-args}:ends`]],
    ['the ends set of another tag', (ns: string) => [...consumeKeys(ns).slice(0, 5), `${ns}:{other}:ends`]],
  ] as const)('KEYS with %s are refused before anything is read or written', async ([, keys], { redis, namespace }) => {
    const [data] = consumeKeys(namespace);
    await redis.set(data, 'bytes', 'PX', 60_000);
    const message = await evalError(redis, 'consume', [...keys(namespace)], [TOKEN, '{}', '1000', '1000']);
    expect(message).toMatch(
      /^PSR_INVALID_OPTIONS consume: KEYS .* are not the data, tombstone, grace, rules, members and ends keys of one object for this token$/,
    );
    expect(await redis.get(data)).toBe('bytes');
    await redis.unlink(data);
  });

  test('a call with 7 KEYS is refused, naming the counts it expects', async ({ redis, namespace }) => {
    const message = await evalError(redis, 'consume', [...keysOf('consume', namespace), `${namespace}:x`], ['t', '{}', '5', '5']);
    expect(message).toBe(
      'PSR_INVALID_OPTIONS consume: expects 6 KEYS (data, tombstone, grace, rules, members, ends) and 4 ARGV (token, consumer, ttlMs, graceMs), got 7 KEYS and 4 ARGV',
    );
  });

  test('a data key holding a hash is a coded error and the hash is left alone', async ({ redis, namespace }) => {
    const [data, tomb] = consumeKeys(namespace);
    await redis.hset(data, 'field', 'value');
    const message = await evalError(redis, 'consume', consumeKeys(namespace), [TOKEN, '{}', '1000', '1000']);
    expect(message).toMatch(/^PSR_SERIALIZATION consume: Redis key .*:d:k holds a value of another Redis type/);
    expect(await redis.hgetall(data)).toEqual({ field: 'value' });
    expect(await redis.exists(tomb)).toBe(0);
    await redis.unlink(data);
  });

  test('a tombstone key holding a list is a coded error when the object is missing', async ({ redis, namespace }) => {
    const [, tomb] = consumeKeys(namespace);
    await redis.rpush(tomb, 'x');
    const message = await evalError(redis, 'consume', consumeKeys(namespace), [TOKEN, '{}', '1000', '1000']);
    expect(message).toMatch(/^PSR_SERIALIZATION consume: Redis key .*:tomb:k holds a value of another Redis type/);
    await redis.unlink(tomb);
  });

  test.for([
    ['rules record', 4, /:rules:k holds a value of another Redis type/],
    ['members set', 5, /:members holds a value of another Redis type/],
    ['ends set', 6, /:ends holds a value of another Redis type/],
  ] as const)('a %s of another Redis type is a coded error, and the object is left as it was', async ([, index, shown], { redis, namespace }) => {
    const keys = consumeKeys(namespace);
    await redis.set(keys[0], 'bytes', 'PX', 60_000);
    await redis.rpush(keys[index - 1] as string, 'x');
    const message = await evalError(redis, 'consume', keys, [TOKEN, '{}', '1000', '1000']);
    expect(message).toMatch(/^PSR_SERIALIZATION consume: Redis key /);
    expect(message).toMatch(shown);
    expect(await redis.get(keys[0])).toBe('bytes');
    expect(await redis.exists(keys[1], keys[2])).toBe(0);
    await redis.unlink(...keys);
  });

  test('a rules record with a malformed budget is a coded error, and the object is left as it was', async ({ redis, namespace }) => {
    const keys = consumeKeys(namespace);
    await redis.set(keys[0], 'bytes', 'PX', 60_000);
    for (const [reads, of] of [['1.5', '3'], ['0', '3'], ['3', '2'], ['2', 'x']]) {
      await redis.hset(keys[3], 'reads', reads as string, 'of', of as string);
      const message = await evalError(redis, 'consume', keys, [TOKEN, '{}', '1000', '1000']);
      expect(message).toMatch(/^PSR_SERIALIZATION consume: the rules record .* has a malformed (reads|of)/);
      expect(await redis.hgetall(keys[3])).toEqual({ reads, of });
      expect(await redis.get(keys[0])).toBe('bytes');
    }
    await redis.unlink(...keys);
  });

  test('any KEYS and ARGV give a well-formed reply or a coded error', async ({ redis, namespace }) => {
    const text = fc.string({ unit: 'binary', maxLength: 20 });
    const call = fc.record({
      keys: fc.array(text.map((s) => `${namespace}:{prop}:${s}`), { maxLength: 7 }),
      args: fc.array(fc.oneof(text, fc.integer().map(String), fc.constantFrom('1', '100', '1e3', 'inf')), { maxLength: 3 }),
      stored: fc.boolean(),
    });
    await fc.assert(
      fc.asyncProperty(call, async ({ keys, args, stored }) => {
        if (stored && keys[0] !== undefined) await redis.set(keys[0], 'v', 'PX', 60_000);
        try {
          const reply = (await redis.eval(LUA_SCRIPTS.consume.source, keys.length, ...keys, ...args)) as unknown[];
          expect(Array.isArray(reply)).toBe(true);
          expect([0, 1]).toContain(reply[0]);
        } catch (err) {
          expect((err as Error).message).toMatch(CODED);
        } finally {
          if (keys.length > 0) await redis.unlink(...keys);
        }
      }),
      { numRuns: 300 },
    );
  });
});

describe('consume, through connector.scripts.run', () => {
  function run(store: Store, keys: Record<string, unknown>, args: Record<string, unknown>) {
    return store.connector.scripts.run(
      'consume',
      keys as ReturnType<typeof validKeys>,
      { token: TOKEN, graceMs: 1000, ...args } as { token: string; consumer: string; ttlMs: number; graceMs: number },
      { key: 'k' },
    );
  }
  function validKeys(store: Store) {
    return store.connector.consumeKeys('k', TOKEN);
  }

  test('a ttlMs that is not a positive integer is an InvalidOptionsError from the script', async ({ store }) => {
    const err = await run(store, validKeys(store), { consumer: '{}', ttlMs: 'soon' }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(InvalidOptionsError);
    expect((err as Error).message).toBe('consume: ttlMs must be an integer from 1 to 9999999999999, got soon');
    expect((err as InvalidOptionsError).key).toBe('k');
  });

  const missing: [string, unknown][] = [
    ['undefined', undefined],
    ['null', null],
    ['an object', { ms: 5 }],
    ['NaN', NaN],
    ['Infinity', Infinity],
    ['a boolean', true],
  ];
  test.for(missing)('ARGV ttlMs as %s is refused before anything is sent', async ([, bad], { store }) => {
    const err = await run(store, validKeys(store), { consumer: '{}', ttlMs: bad }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(InvalidOptionsError);
    expect((err as Error).message).toMatch(/^script consume: ARGV ttlMs must be a string, a finite number or a Buffer, got /);
  });

  test('a missing ARGV is refused, naming the argument', async ({ store }) => {
    const err = await run(store, validKeys(store), { ttlMs: 1000 }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(InvalidOptionsError);
    expect((err as Error).message).toBe('script consume: ARGV consumer must be a string, a finite number or a Buffer, got undefined');
  });

  test.for([
    ['undefined', undefined],
    ['empty', ''],
    ['an object', {}],
  ] as [string, unknown][])('a KEYS entry that is %s is refused (it would name a key outside the namespace)', async ([, bad], { store }) => {
    const err = await run(store, { ...validKeys(store), tombstone: bad }, { consumer: '{}', ttlMs: 1000 }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(InvalidOptionsError);
    expect((err as Error).message).toMatch(/^script consume: KEYS tombstone must be a non-empty string, got /);
  });

  test('queue refuses a missing argument synchronously, before the pipeline runs', ({ store }) => {
    const pipeline = store.connector.client.pipeline();
    expect(() =>
      store.connector.scripts.queue(pipeline, 'consume', validKeys(store), { token: TOKEN, consumer: '{}', graceMs: 1 } as {
        token: string;
        consumer: string;
        ttlMs: number;
        graceMs: number;
      }),
    ).toThrow(/ARGV ttlMs must be/);
  });

  test('consuming a key whose Redis key holds a hash is a SerializationError naming that Redis key', async ({ store, redis }) => {
    await redis.hset(store.connector.dataKey('k'), 'field', 'value');
    const err = await store.connector.consume('k', '{}', 1000).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(SerializationError);
    expect((err as Error).message).toContain(store.connector.dataKey('k'));
    await redis.unlink(store.connector.dataKey('k'));
  });

  test('any argument values give a well-formed reply or a ProxyStoreError', async ({ store }) => {
    const value = fc.oneof(fc.anything(), fc.string(), fc.integer(), fc.double());
    await fc.assert(
      fc.asyncProperty(value, value, async (consumer, ttlMs) => {
        try {
          const reply = await run(store, validKeys(store), { consumer, ttlMs });
          expect(reply.consumed).toBe(false);
        } catch (err) {
          expect(err).toBeInstanceOf(ProxyStoreError);
        }
      }),
      { numRuns: 300 },
    );
  });
});
