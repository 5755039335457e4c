/**
 * Values that cannot come back are refused before anything is written, with
 * a SerializationError naming the path inside the value (docs/serialization.md,
 * "What is refused"). Everything else keeps working: classes with a toJSON,
 * custom serializers, proxies nested in a value, and other users of msgpackr
 * in the same process.
 */
import { EventEmitter } from 'node:events';
import { Packr } from 'msgpackr';
import { SerializationError, resolve, toRef, type Store } from '../../src/index.js';
import { describe, expect, namespaceKeys, test } from '../harness/ownership.js';

class Point {
  constructor(
    public x = 1,
    public y = 2,
  ) {}
  norm(): number {
    return Math.hypot(this.x, this.y);
  }
}

class Money {
  constructor(readonly cents: number) {}
  toJSON(): { cents: number } {
    return { cents: this.cents };
  }
}

/** [what, value, the message it gets] */
const REFUSED: [string, unknown, RegExp][] = [
  ['a function', () => 42, /^cannot store this value: value is a function/],
  ['a function deep inside', { handlers: [{}, {}, { onClick: () => 1 }] }, /value\.handlers\[2\]\.onClick is a function/],
  ['a symbol', Symbol('s'), /value is a symbol/],
  ['a symbol in an array', [1, Symbol('s')], /value\[1\] is a symbol/],
  ['a WeakMap', { cache: new WeakMap() }, /value\.cache is a WeakMap \(its entries cannot be read/],
  ['a WeakSet', new WeakSet(), /value is a WeakSet/],
  ['a WeakRef', [new WeakRef({})], /value\[0\] is a WeakRef/],
  ['a Promise', { pending: Promise.resolve(1) }, /value\.pending is a Promise: await it and store its value/],
  ['a class instance', { at: new Point() }, /value\.at is an instance of Point: .*toJSON\(\).*custom serializer/],
  ['a subclass of Map (msgpackr wrote {})', new (class Registry extends Map<number, number> {})([[1, 2]]), /value is an instance of Registry/],
  ['an EventEmitter', new EventEmitter(), /value is an instance of EventEmitter/],
  ['a generator', (function* gen() {})(), /value is an instance of Generator/],
  ['a boxed primitive', { n: new Number(5) }, /value\.n is a boxed Number: store the primitive \(number\)/],
  ['a function as a Map value', new Map([['k', () => 1]]), /value\.get\("k"\) is a function/],
  ['a function as a Map key', new Map<unknown, string>([[() => 1, 'v']]), /value\.keys\(\)\[0\] is a function/],
  ['a function in a Set', new Set([1, () => 1]), /value\.values\(\)\[1\] is a function/],
  ['an odd key', { 'a b': { c: () => 1 } }, /value\["a b"\]\.c is a function/],
  ['a SharedArrayBuffer', { shared: new SharedArrayBuffer(8) }, /value\.shared is a SharedArrayBuffer/],
];

async function expectNothingWritten(store: Store, redis: Parameters<typeof namespaceKeys>[0]): Promise<void> {
  expect(await namespaceKeys(redis, store.namespace)).toEqual([]);
}

describe('values that cannot round-trip are refused before anything is written', () => {
  for (const [what, value, message] of REFUSED) {
    test(`put of ${what}`, async ({ store, redis }) => {
      const err = await store.put(value).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(SerializationError);
      expect((err as Error).message).toMatch(message);
      expect((err as Error).message).toMatch(/nothing was written/);
      await expectNothingWritten(store, redis);
    });
  }

  test('proxy, proxyBatch, putBatch, lockedProxy and ownedProxy refuse them too, and write nothing', async ({ store, redis }) => {
    const fn = () => 42;
    await expect(store.proxy(fn)).rejects.toThrow(/value is a function/);
    await expect(store.proxy({ f: fn }, { evict: true })).rejects.toThrow(/value\.f is a function/);
    await expect(store.proxyBatch([{ ok: 1 }, { bad: new WeakMap() }])).rejects.toThrow(/value\.bad is a WeakMap/);
    await expect(store.putBatch([1, 2, [Promise.resolve()]])).rejects.toThrow(/value\[0\] is a Promise/);
    await expect(store.lockedProxy(new Point())).rejects.toThrow(/value is an instance of Point/);
    await expect(store.ownedProxy({ p: new Point() })).rejects.toThrow(/value\.p is an instance of Point/);
    await expectNothingWritten(store, redis);
  });

  test('a refused put leaves the encoder working', async ({ store }) => {
    await expect(store.put({ a: [1, { b: () => 1 }] })).rejects.toThrow(SerializationError);
    const key = await store.put({ a: [1, { b: 2 }] });
    expect(await store.get(key)).toEqual({ a: [1, { b: 2 }] });
    await store.evict(key);
  });
});

describe('what is still stored', () => {
  test('a class with toJSON is stored as what toJSON returns (as JSON.stringify does)', async ({ store }) => {
    const key = await store.put({ price: new Money(250), site: new URL('https://example.com/a') });
    expect(await store.get(key)).toEqual({ price: { cents: 250 }, site: 'https://example.com/a' });
    await store.evict(key);
  });

  test('Error subclasses, typed array subclasses and Object.create(null) are stored as documented', async ({ store }) => {
    class NotFound extends Error {}
    const key = await store.put({ e: new NotFound('gone'), px: new (class Pixels extends Uint8Array {})([1]), bare: Object.assign(Object.create(null) as object, { a: 1 }) });
    const back = (await store.get<{ e: Error; px: Uint8Array; bare: object }>(key))!;
    expect(back.e).toBeInstanceOf(Error);
    expect(back.e.message).toBe('gone');
    expect(back.px).toEqual(new Uint8Array([1]));
    expect(back.bare).toEqual({ a: 1 });
    await store.evict(key);
  });

  test('a custom serializer decides for itself: a class instance goes through it', async ({ store }) => {
    const serializer = (v: unknown) => Buffer.from(JSON.stringify({ x: (v as Point).x, y: (v as Point).y }));
    const deserializer = (b: Buffer) => Object.assign(new Point(), JSON.parse(b.toString()) as object);
    const key = await store.put(new Point(3, 4), { serializer });
    const back = (await store.get<Point>(key, { deserializer }))!;
    expect(back.norm()).toBe(5);
    await store.evict(key);
  });

  test('a proxy nested in a value is stored as its ref', async ({ store }) => {
    const inner = await store.proxy({ deep: 1 });
    const key = await store.put({ inner, list: [inner] });
    const back = (await store.get<{ inner: { deep: number }; list: unknown[] }>(key))!;
    expect(await resolve(back.inner)).toEqual({ deep: 1 });
    await store.evict(key);
    await store.evict(toRef(inner).key);
  });

  test('other users of msgpackr in the process are not affected: their class instances still pack', () => {
    const packr = new Packr({ structuredClone: true });
    expect(packr.unpack(packr.pack({ p: new Point(1, 2) }))).toEqual({ p: { x: 1, y: 2 } });
  });
});
