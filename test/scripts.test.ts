import { LUA_SCRIPTS } from '../src/generated/lua.js';
import { InvalidOptionsError, RedisOperationError } from '../src/index.js';
import { describe, expect, test } from './harness/store-fixture.js';

describe('Lua scripts', () => {
  test('every script declares its KEYS and ARGV in its header', () => {
    for (const [name, script] of Object.entries(LUA_SCRIPTS)) {
      expect(script.keys.length, name).toBeGreaterThan(0);
      expect(script.source).toMatch(/^-- \w+: /);
      expect(script.source, name).toMatch(/-- Returns:/);
      expect(script.source, name).toMatch(/-- Errors:/);
    }
  });

  test('a coded Lua error becomes its error class, never a Lua stack trace', async ({ store }) => {
    const err = await store.connector.consume('some-key', '{}', 0).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(InvalidOptionsError);
    expect((err as Error).message).toBe('consume: ttlMs must be an integer from 1 to 9999999999999, got 0');
    expect((err as InvalidOptionsError).key).toBe('some-key');
  });

  test('a reply of the wrong shape is a clear RedisOperationError', ({ store }) => {
    expect(() => store.connector.scripts.decode('consume', 'OK')).toThrow(RedisOperationError);
    expect(() => store.connector.scripts.decode('consume', [1, null])).toThrow(/script consume gave an unexpected reply/);
  });

  test('scripts are registered under versioned names, so two versions can share a client', ({ store }) => {
    const client = store.connector.client as unknown as Record<string, unknown>;
    const names = Object.keys(LUA_SCRIPTS).map((n) => `psr_${n}_${LUA_SCRIPTS[n as keyof typeof LUA_SCRIPTS].sha.slice(0, 12)}`);
    for (const name of names) expect(typeof client[name]).toBe('function');
  });
});
