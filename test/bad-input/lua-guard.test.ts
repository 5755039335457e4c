/**
 * The arity guard scripts/generate-lua.mjs puts after every script's header:
 * a call with other KEYS/ARGV counts than the header declares gets a coded
 * PSR_INVALID_OPTIONS error; a variadic `KEYS[n...]`/`ARGV[n...]` makes the
 * count a minimum. Run on small scripts whose body only reports the counts.
 */
import { withArityGuard } from '../../scripts/lua-guard.mjs';
import { describe, expect, test } from '../harness/fixtures.js';

/** A script with `header` lines, guarded, whose body returns {#KEYS, #ARGV}. */
function script(name: string, header: string[]): string {
  const raw = [`-- ${name}: test script`, ...header, '-- Returns: {#KEYS, #ARGV}', '-- Errors: PSR_INVALID_OPTIONS', 'return {#KEYS, #ARGV}'].join('\n');
  return withArityGuard(name, raw, raw);
}

const cases: { name: string; header: string[]; ok: [number, number][]; refused: [number, number][]; message: string }[] = [
  {
    name: 'exact',
    header: ['-- KEYS[1] a  first', '-- KEYS[2] b  second', '-- ARGV[1] x  an argument'],
    ok: [[2, 1]],
    refused: [[0, 0], [1, 1], [3, 1], [2, 0], [2, 2]],
    message: 'PSR_INVALID_OPTIONS exact: expects 2 KEYS (a, b) and 1 ARGV (x), got',
  },
  {
    name: 'restKeys',
    header: ['-- KEYS[1] a  first', '-- KEYS[2...] rest  the others', '-- ARGV[1] x  an argument'],
    ok: [[1, 1], [2, 1], [5, 1]],
    refused: [[0, 1], [1, 0], [1, 2]],
    message: 'PSR_INVALID_OPTIONS restKeys: expects at least 1 KEYS (a, rest...) and 1 ARGV (x), got',
  },
  {
    name: 'restArgs',
    header: ['-- KEYS[1] a  first', '-- ARGV[1...] values  any number'],
    ok: [[1, 0], [1, 5]],
    refused: [[0, 3], [2, 1]],
    message: 'PSR_INVALID_OPTIONS restArgs: expects 1 KEYS (a) and at least 0 ARGV (values...), got',
  },
  {
    name: 'noArgs',
    header: ['-- KEYS[1] a  first'],
    ok: [[1, 0]],
    refused: [[1, 1], [0, 0]],
    message: 'PSR_INVALID_OPTIONS noArgs: expects 1 KEYS (a) and 0 ARGV, got',
  },
];

describe('the generated arity guard', () => {
  test.for(cases)('$name: calls matching the header run', async ({ name, header, ok }, { redis, namespace }) => {
    for (const [k, a] of ok) {
      const keys = Array.from({ length: k }, (_, i) => `${namespace}:{g}:${i}`);
      expect(await redis.eval(script(name, header), k, ...keys, ...Array.from({ length: a }, () => 'v'))).toEqual([k, a]);
    }
  });

  test.for(cases)('$name: other counts get a coded error naming what the header expects', async ({ name, header, refused, message }, { redis, namespace }) => {
    for (const [k, a] of refused) {
      const keys = Array.from({ length: k }, (_, i) => `${namespace}:{g}:${i}`);
      await expect(redis.eval(script(name, header), k, ...keys, ...Array.from({ length: a }, () => 'v'))).rejects.toThrow(
        `${message} ${k} KEYS and ${a} ARGV`,
      );
    }
  });

  test('the guard goes after the header, which still opens the script', () => {
    const source = script('exact', cases[0]!.header);
    expect(source).toMatch(/^-- exact: test script\n-- KEYS\[1\] a/);
    expect(source.indexOf('if #KEYS')).toBeGreaterThan(source.indexOf('-- Errors:'));
    expect(source.indexOf('if #KEYS')).toBeLessThan(source.indexOf('return {#KEYS, #ARGV}'));
  });
});
