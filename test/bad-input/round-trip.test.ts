/**
 * Any value msgpackr (with structured cloning) supports comes back from
 * store.put/get as it went in, except for the documented changes of
 * docs/serialization.md, which `documented()` applies to the expected value
 * and which the tests after the property pin one by one.
 */
import { inspect, isDeepStrictEqual } from 'node:util';
import fc from 'fast-check';
import { describe, expect, test } from '../harness/store-fixture.js';

/** A lone UTF-16 surrogate: UTF-8 cannot carry one, it comes back as U+FFFD. */
const LONE_SURROGATE = /[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/g;

function wellFormed(s: string): string {
  return s.replace(LONE_SURROGATE, '\ufffd');
}

/** What get() gives for a value put(), per docs/serialization.md. */
function documented(value: unknown): unknown {
  if (typeof value === 'number') return Object.is(value, -0) ? 0 : value;
  if (typeof value === 'string') return wellFormed(value);
  if (typeof value !== 'object' || value === null) return value;
  if (ArrayBuffer.isView(value) || value instanceof Date) return value;
  if (Array.isArray(value)) return value.map(documented);
  if (value instanceof Map) return new Map([...value].map(([k, v]) => [documented(k), documented(v)]));
  if (value instanceof Set) return new Set([...value].map(documented));
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(value)) {
    // defineProperty, so that a '__proto__' key would be an own key here too.
    const key = k === '__proto__' ? '__proto_' : wellFormed(k);
    Object.defineProperty(out, key, { value: documented(v), enumerable: true, writable: true, configurable: true });
  }
  return out;
}

/**
 * Deep equality by prototype and SameValue (so 0 and -0 differ, NaN equals
 * NaN). Not toStrictEqual: it compares `.constructor`, which an own key
 * named "constructor" overrides.
 */
function expectSame(actual: unknown, expected: unknown): void {
  if (!isDeepStrictEqual(actual, expected)) {
    expect.fail(`got ${inspect(actual, { depth: 8 })}\nexpected ${inspect(expected, { depth: 8 })}`);
  }
}

// Strings of any code point, now and then a lone surrogate half.
const unit = fc.oneof(
  { weight: 20, arbitrary: fc.string({ unit: 'binary', minLength: 1, maxLength: 1 }) },
  { weight: 1, arbitrary: fc.integer({ min: 0xd800, max: 0xdfff }).map((c) => String.fromCharCode(c)) },
);
const text = fc.string({ unit, maxLength: 30 });
const key = fc.oneof(
  { weight: 10, arbitrary: text },
  { weight: 1, arbitrary: fc.constantFrom('__proto__', '__proto_', 'constructor', 'prototype', 'toString', 'toJSON', 'then', '', '0', '-1') },
);
const leaf = fc.oneof(
  text,
  fc.double(), // includes -0, NaN, ±Infinity
  fc.integer(),
  fc.constantFrom(-0, NaN, Infinity, -Infinity, 2 ** 53, -(2 ** 53), 2 ** 64, Number.MIN_VALUE, Number.MAX_VALUE),
  fc.bigInt(), // up to 64 bits
  fc.bigInt({ min: -(2n ** 4096n), max: 2n ** 4096n }),
  fc.date({ noInvalidDate: true }),
  fc.uint8Array().map((bytes) => Buffer.from(bytes)),
  fc.uint8Array(),
  fc.int16Array(),
  fc.uint32Array(),
  fc.float32Array(),
  fc.float64Array(),
  fc.bigInt64Array(),
  fc.bigUint64Array(),
  fc.boolean(),
  fc.constant(null),
  fc.constant(undefined),
);
const anyValue = fc.anything({ key, values: [leaf], withMap: true, withSet: true, maxDepth: 4, maxKeys: 6 });

describe('what msgpackr supports round-trips through put and get', () => {
  test('any value comes back equal to its documented form', async ({ store }) => {
    await fc.assert(
      fc.asyncProperty(anyValue, async (value) => {
        const key = await store.put(value);
        try {
          expectSame(await store.get(key), documented(value));
        } finally {
          await store.evict(key);
        }
      }),
      { numRuns: 300 },
    );
  });

  test('any batch comes back in order, each equal to its documented form', async ({ store }) => {
    await fc.assert(
      fc.asyncProperty(fc.array(anyValue, { minLength: 1, maxLength: 8 }), async (values) => {
        const keys = await store.putBatch(values);
        try {
          expectSame(await Promise.all(keys.map((k) => store.get(k))), values.map(documented));
        } finally {
          for (const k of keys) await store.evict(k);
        }
      }),
      { numRuns: 100 },
    );
  });

  test('bigints of thousands of bits keep every bit, at the top level and nested', async ({ store }) => {
    const values = [2n ** 10_000n + 12345n, -(2n ** 5_000n) - 1n, 2n ** 64n, -(2n ** 63n) - 1n];
    const key = await store.put({ values, top: values[0] });
    expect(await store.get(key)).toStrictEqual({ values, top: values[0] });
    await store.evict(key);
  });

  test('plain objects with data keys named constructor and toJSON come back as they went in', async ({ store }) => {
    const values = [{ constructor: false, toJSON: '\u0000' }, { constructor: 'x', toJSON: 5, a: [1] }];
    const key = await store.put(values);
    expectSame(await store.get(key), values);
    await store.evict(key);
  });

  test('the earliest and latest valid Dates come back exactly', async ({ store }) => {
    const dates = [new Date(-8.64e15), new Date(8.64e15), new Date(-1), new Date(0), new Date('1969-07-20T20:17:40.123Z')];
    const key = await store.put(dates);
    expect(await store.get(key)).toStrictEqual(dates);
    await store.evict(key);
  });

  test('cycles and shared references keep their identity', async ({ store }) => {
    const shared = { n: 1 };
    const value: Record<string, unknown> = { a: shared, b: [shared] };
    value.self = value;
    const key = await store.put(value);
    const back = (await store.get(key)) as { a: object; b: object[]; self: unknown };
    expect(back.self).toBe(back);
    expect(back.b[0]).toBe(back.a);
    await store.evict(key);
  });
});

describe('documented changes (docs/serialization.md)', () => {
  test('-0 comes back as 0 at the top level and nested', async ({ store }) => {
    const keys = await store.putBatch([-0, [-0], { x: -0 }]);
    const back = await Promise.all(keys.map((k) => store.get(k)));
    expect(Object.is(back[0], 0)).toBe(true);
    expect(Object.is((back[1] as number[])[0], 0)).toBe(true);
    expect(Object.is((back[2] as { x: number }).x, 0)).toBe(true);
    for (const k of keys) await store.evict(k);
  });

  test('-0 inside a typed array is kept (its bytes are stored as they are)', async ({ store }) => {
    const key = await store.put({ f: new Float64Array([-0]) });
    expect(Object.is((await store.get<{ f: Float64Array }>(key))!.f[0], -0)).toBe(true);
    await store.evict(key);
  });

  test('a lone surrogate in a string or a key comes back as U+FFFD', async ({ store }) => {
    const key = await store.put({ ['k\udc00']: 'v\ud800' });
    expect(await store.get(key)).toStrictEqual({ 'k\ufffd': 'v\ufffd' });
    await store.evict(key);
  });

  test('an own __proto__ key comes back as __proto_ (msgpackr refuses to set a prototype)', async ({ store }) => {
    const key = await store.put(JSON.parse('{"__proto__": {"x": 1}, "a": 2}'));
    const back = (await store.get(key)) as Record<string, unknown>;
    expect(Object.keys(back)).toEqual(['__proto_', 'a']);
    expect(back.__proto_).toEqual({ x: 1 });
    expect(Object.getPrototypeOf(back)).toBe(Object.prototype);
    await store.evict(key);
  });

  test('holes of a sparse array come back as undefined elements', async ({ store }) => {
    // eslint-disable-next-line no-sparse-arrays
    const key = await store.put([1, , 3]);
    const back = (await store.get(key)) as unknown[];
    expect(back).toHaveLength(3);
    expect(1 in back).toBe(true);
    expect(back[1]).toBeUndefined();
    await store.evict(key);
  });

  test('an object with a null prototype comes back as a plain object', async ({ store }) => {
    const key = await store.put(Object.assign(Object.create(null) as object, { a: 1 }));
    const back = await store.get<object>(key);
    expect(Object.getPrototypeOf(back)).toBe(Object.prototype);
    expect(back).toEqual({ a: 1 });
    await store.evict(key);
  });

  test('a typed array subclass comes back as its base class, at the top level and nested', async ({ store }) => {
    class Pixels extends Uint8Array {}
    const key = await store.put(new Pixels([1, 2, 3]));
    const nested = await store.put({ p: new Pixels([4]), f: new (class extends Float32Array {})([1.5]) });
    const top = await store.get(key);
    expect(top).toBeInstanceOf(Uint8Array);
    expect(top).not.toBeInstanceOf(Pixels);
    expect(top).toEqual(new Uint8Array([1, 2, 3]));
    expect(await store.get(nested)).toStrictEqual({ p: new Uint8Array([4]), f: new Float32Array([1.5]) });
    await store.evict(key);
    await store.evict(nested);
  });

  test('a function property or a symbol is refused, naming where it is (test/bad-input/unstorable.test.ts has the rest)', async ({ store }) => {
    await expect(store.put({ f: () => 1, a: 1 })).rejects.toThrow(/value\.f is a function/);
    await expect(store.put({ s: Symbol('s') })).rejects.toThrow(/value\.s is a symbol/);
  });

  test('boxed primitives are refused: new Number(5) would come back as an empty object', async ({ store }) => {
    await expect(store.put([new Number(5)])).rejects.toThrow(/value\[0\] is a boxed Number: store the primitive/);
  });
});
