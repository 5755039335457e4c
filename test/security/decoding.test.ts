/**
 * Decoding bytes or JSON from elsewhere never runs code and never pollutes
 * a prototype: msgpackr renames a `__proto__` key of a record to `__proto_`,
 * decodes plain msgpack maps as Maps, refuses non-string record keys, and
 * builds its fast record readers from keys only as JSON string literals;
 * JSON.parse with proxyReviver defines `__proto__` as an own property.
 * Every check runs the decoder several times over, so that msgpackr's
 * generated (`new Function`) record reader is in play too.
 */
import { isDeepStrictEqual } from 'node:util';
import fc from 'fast-check';
import { Packr } from 'msgpackr';
import { PROXY_EXTENSION_TYPE } from '../../src/proxy/refs.js';
import { deserialize, serialize } from '../../src/serialize.js';
import {
  InvalidRefError,
  ProxyStoreError,
  ProxyStoreFactoryError,
  REF_MARKER,
  SerializationError,
  fromRef,
  isProxy,
  proxyReviver,
  resolve,
  toRef,
} from '../../src/index.js';
import { describe, expect, test } from '../harness/store-fixture.js';

const HEADER = Buffer.from([0xb7, 0x4d, 0x6f]); // ours, msgpack codec, shape 'object'
/** How the library packs objects, to craft records the way it writes them. */
const packr = new Packr({ structuredClone: true, useBigIntExtension: true });
/** A plain msgpack writer, as any other client could use. */
const plain = new Packr({ useRecords: false });

const PROTOTYPES: [string, object][] = [
  ['Object', Object.prototype],
  ['Array', Array.prototype],
  ['Function', Function.prototype],
  ['String', String.prototype],
  ['Map', Map.prototype],
  ['Set', Set.prototype],
  ['Error', Error.prototype],
  ['Promise', Promise.prototype],
];

/** The own keys of the built-in prototypes, to compare before and after decoding. */
function prototypeKeys(): Record<string, string[]> {
  return Object.fromEntries(PROTOTYPES.map(([name, proto]) => [name, Reflect.ownKeys(proto).map(String).sort()]));
}

const pristine = prototypeKeys();

function expectNoPollution(): void {
  expect(prototypeKeys()).toEqual(pristine);
  expect(({} as Record<string, unknown>).polluted).toBeUndefined();
  expect((globalThis as Record<string, unknown>).pwned).toBeUndefined();
}

function decode(payload: Buffer): unknown {
  return deserialize(Buffer.concat([HEADER, payload]), 'k');
}

/** Decode `payload` as part of an array of six, so msgpackr compiles its record reader. */
function decodeMany(payload: Buffer): unknown[] {
  const many = Buffer.concat([Buffer.from([0x96]), ...Array.from({ length: 6 }, () => payload)]);
  return decode(many) as unknown[];
}

/** Everything reachable in a decoded value, proxies excepted (they are ours, made from refs). */
function* walk(value: unknown, seen = new Set<unknown>()): Generator<unknown> {
  if (seen.has(value)) return;
  seen.add(value);
  yield value;
  if (typeof value !== 'object' || value === null || isProxy(value)) return;
  if (value instanceof Map) {
    for (const [k, v] of value) {
      yield* walk(k, seen);
      yield* walk(v, seen);
    }
  } else if (value instanceof Set || Array.isArray(value)) {
    for (const v of value) yield* walk(v, seen);
  } else if (!ArrayBuffer.isView(value)) {
    for (const k of Reflect.ownKeys(value)) yield* walk((value as Record<PropertyKey, unknown>)[k], seen);
  }
}

describe('msgpack: __proto__, constructor and prototype keys', () => {
  test('an own __proto__ key of a stored object comes back renamed and sets no prototype', async ({ store }) => {
    const key = await store.put(JSON.parse('{"__proto__": {"polluted": true, "isAdmin": true}}'));
    for (let i = 0; i < 5; i++) {
      const back = (await store.get(key)) as Record<string, unknown>;
      expect(Object.getPrototypeOf(back)).toBe(Object.prototype);
      expect(back.isAdmin).toBeUndefined();
      expect(back.__proto_).toEqual({ polluted: true, isAdmin: true });
    }
    expectNoPollution();
    await store.evict(key);
  });

  test('a record whose __proto__ key is written as str8, not fixstr, is renamed too', () => {
    const fixstr = packr.pack(JSON.parse('{"__proto__": {"polluted": true}}')).toString('hex');
    const str8 = fixstr.replace('a95f5f70726f746f5f5f', 'd9095f5f70726f746f5f5f');
    expect(str8).not.toBe(fixstr);
    for (const value of decodeMany(Buffer.from(str8, 'hex'))) {
      expect(Object.getPrototypeOf(value)).toBe(Object.prototype);
      expect(Object.keys(value as object)).toEqual(['__proto_']);
    }
    expectNoPollution();
  });

  test('a record key that is not a string (an array ["__proto__"]) is a SerializationError', () => {
    const hex = packr.pack(JSON.parse('{"__proto__": {"polluted": true}}')).toString('hex').replace('a95f5f70726f746f5f5f', '91a95f5f70726f746f5f5f');
    expect(() => decode(Buffer.from(hex, 'hex'))).toThrow(SerializationError);
    expect(() => decode(Buffer.from(hex, 'hex'))).toThrow(/Invalid property type for record/);
    expectNoPollution();
  });

  test('a plain msgpack map with a __proto__ key decodes as a Map, touching no prototype', () => {
    for (const value of decodeMany(plain.pack(JSON.parse('{"__proto__": {"polluted": true}}')))) {
      expect(value).toBeInstanceOf(Map);
      expect((value as Map<string, unknown>).get('__proto__')).toBeInstanceOf(Map);
    }
    expectNoPollution();
  });

  test('constructor and prototype keys come back as plain data', async ({ store }) => {
    const value = { constructor: { prototype: { polluted: true } }, prototype: { polluted: true }, toString: 'x', hasOwnProperty: 1 };
    const key = await store.put(value);
    for (let i = 0; i < 5; i++) {
      const back = (await store.get(key)) as Record<string, unknown>;
      // Not toStrictEqual: it compares `.constructor`, which is data here.
      expect(isDeepStrictEqual(back, value)).toBe(true);
      expect(Object.getPrototypeOf(back)).toBe(Object.prototype);
    }
    expectNoPollution();
    await store.evict(key);
  });
});

describe('msgpack: decoding runs no code', () => {
  test('record keys written as JavaScript stay data in the generated record reader', () => {
    const evil: Record<string, number> = {
      "a']:(globalThis.pwned=1),['b": 1,
      '"+(globalThis.pwned=1)+"': 2,
      '});globalThis.pwned=1;({': 3,
      '\u2028globalThis.pwned=1': 4,
      '*/globalThis.pwned=1/*': 5,
      '`${globalThis.pwned=1}`': 6,
      '__proto__:(globalThis.pwned=1)': 7,
    };
    for (const back of decodeMany(packr.pack(evil))) expect(back).toStrictEqual(evil);
    expectNoPollution();
  });

  test.for(['valueOf', 'constructor', '__proto__', 'toString', 'hasOwnProperty', '__defineGetter__', 'Function', 'eval'])(
    'an error extension named %j decodes to a plain Error of that name, calling nothing',
    (name) => {
      // 0xd4 0x65 0x00: msgpackr's error extension, then [name, message, cause]
      const bytes = Buffer.concat([Buffer.from([0xd4, 0x65, 0x00]), plain.pack([name, 'globalThis.pwned=1', null])]);
      const value = decode(bytes) as Error;
      expect(Object.getPrototypeOf(value)).toBe(Error.prototype);
      expect(value.name).toBe(name);
      expect(value.message).toBe('globalThis.pwned=1');
      expectNoPollution();
    },
  );

  test('built-in error classes still decode as themselves', () => {
    const errors = [new TypeError('t'), new RangeError('r', { cause: 'c' }), new AggregateError([new Error('a')], 'agg')];
    const back = deserialize(serialize(errors), 'k') as Error[];
    expect(back.map((e) => e.constructor)).toEqual([TypeError, RangeError, AggregateError]);
    expect(back[1]!.cause).toBe('c');
    expect((back[2] as AggregateError).errors[0]).toBeInstanceOf(Error);
  });

  test('any bytes decode to data without functions, or fail with a SerializationError', () => {
    // Random bytes, mixed with the tokens that reach msgpackr's extensions (records, errors,
    // regexps, typed arrays, references, our proxy refs) and long length prefixes.
    const token = fc.oneof(
      fc.uint8Array({ maxLength: 12 }),
      fc.constantFrom(
        [0xd4, 0x72, 0x40], [0xd4, 0x65, 0x00], [0xd4, 0x78, 0x00], [0xd4, 0x73, 0x00], [0xd4, PROXY_EXTENSION_TYPE, 0x00],
        [0xd6, 0x69, 0, 0, 0, 1], [0xd6, 0x70, 0, 0, 0, 1], [0xc7, 0x03, 0x74, 0x01], [0xc7, 0x02, 0x42], [0xdd, 0xff, 0xff, 0xff, 0xff],
        [0xdb, 0x7f, 0xff, 0xff, 0xff], [0xa9, 0x5f, 0x5f, 0x70, 0x72, 0x6f, 0x74, 0x6f, 0x5f, 0x5f], [0x40], [0x41], [0x96], [0x81],
      ).map((b) => Uint8Array.from(b)),
    );
    const bytes = fc.array(token, { maxLength: 12 }).map((parts) => Buffer.concat(parts));
    fc.assert(
      fc.property(bytes, (payload) => {
        let value: unknown;
        try {
          value = decode(payload);
        } catch (err) {
          expect(err, String(err)).toBeInstanceOf(SerializationError);
          return;
        }
        for (const v of walk(value)) expect(typeof v).not.toBe('function');
      }),
      { numRuns: 5000 },
    );
    expectNoPollution();
  });

  test('after any failed decode the decoder still decodes a good value correctly', () => {
    const good = serialize({ a: [1, 'two', new Map([[3, new Set([4])]])] });
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 64 }), (payload) => {
        try {
          decode(Buffer.from(payload));
        } catch {
          // a failure is fine; what matters is the next decode
        }
        expect(deserialize(good, 'good')).toStrictEqual({ a: [1, 'two', new Map([[3, new Set([4])]])] });
      }),
      { numRuns: 2000 },
    );
  });

  test('any bytes under a key read back as a value or a SerializationError naming the key', async ({ store }) => {
    await fc.assert(
      fc.asyncProperty(fc.uint8Array({ maxLength: 64 }), fc.boolean(), async (payload, withHeader) => {
        await store.connector.set('foreign', withHeader ? Buffer.concat([HEADER, payload]) : payload);
        try {
          await store.get('foreign');
        } catch (err) {
          expect(err).toBeInstanceOf(SerializationError);
          expect((err as Error).message).toContain('key foreign');
        } finally {
          await store.evict('foreign');
        }
      }),
      { numRuns: 300 },
    );
    expectNoPollution();
  });
});

describe('JSON with proxyReviver', () => {
  test('a __proto__ key becomes an own property and sets no prototype', () => {
    const value = JSON.parse('{"__proto__": {"polluted": true, "isAdmin": true}, "a": {"__proto__": {"polluted": true}}}', proxyReviver) as Record<string, unknown>;
    expect(Object.getPrototypeOf(value)).toBe(Object.prototype);
    expect(Object.getOwnPropertyNames(value)).toEqual(['__proto__', 'a']);
    expect(value.isAdmin).toBeUndefined();
    expectNoPollution();
  });

  test('constructor and prototype keys stay plain data', () => {
    const text = '{"constructor": {"prototype": {"polluted": true}}, "prototype": {"polluted": true}}';
    expect(isDeepStrictEqual(JSON.parse(text, proxyReviver), JSON.parse(text))).toBe(true);
    expectNoPollution();
  });

  test('a ref under a __proto__ key becomes an own property holding a proxy', async ({ store }) => {
    const p = await store.proxy({ inner: 1 });
    const value = JSON.parse(`{"__proto__": ${JSON.stringify(toRef(p))}}`, proxyReviver) as Record<string, unknown>;
    const own = Object.getOwnPropertyDescriptor(value, '__proto__')?.value;
    expect(isProxy(own)).toBe(true);
    expect(Object.getPrototypeOf(value)).toBe(Object.prototype);
    expect(await resolve(own as object)).toEqual({ inner: 1 });
    expectNoPollution();
    await store.evict(toRef(p).key);
  });

  test.for(['__proto__', 'constructor', 'toString', 'hasOwnProperty'])(
    'a ref naming store %j resolves to "no store registered", never to a prototype member',
    async (name) => {
      const ref = { [REF_MARKER]: 1, store: name, namespace: name, key: name, shape: 'object' };
      const err = await resolve(fromRef(ref)).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(ProxyStoreFactoryError);
      expect((err as Error).message).toContain(`no store named ${JSON.stringify(name)} is registered`);
      expectNoPollution();
    },
  );

  test.for(['__proto__', 'constructor', 'toString'])('a ref with kind or shape %j is an InvalidRefError', (name) => {
    const base = { [REF_MARKER]: 1, store: 's', namespace: 'n', key: 'k', shape: 'object' };
    expect(() => fromRef({ ...base, kind: name })).toThrow(InvalidRefError);
    expect(() => fromRef({ ...base, shape: name })).toThrow(InvalidRefError);
  });

  test('an error crossing processes with a prototype-member code or name comes back a plain ProxyStoreError', () => {
    for (const name of ['__proto__', 'constructor', 'toString']) {
      const err = ProxyStoreError.fromJSON({ name, code: name, message: 'm', stack: `${name}: m` });
      expect(err.constructor).toBe(ProxyStoreError);
    }
    expectNoPollution();
  });
});
