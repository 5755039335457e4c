/**
 * Refs arrive from outside (queues, events, other processes): whatever they
 * hold, `fromRef` returns a proxy or throws a ProxyStoreError, the
 * `proxyReviver` returns the parsed value or throws a ProxyStoreError, and
 * resolving a revived proxy gives its value or rejects with a
 * ProxyStoreError. Never a TypeError from deep inside, never a hang.
 */
import fc from 'fast-check';
import { Packr } from 'msgpackr';
import { PROXY_EXTENSION_TYPE } from '../../src/proxy/refs.js';
import { ProxyStoreError, REF_MARKER, fromRef, isProxy, proxyReviver, resolve, toRef, type ProxyRef } from '../../src/index.js';
import { describe, expect, test } from '../harness/store-fixture.js';

const FIELDS = [REF_MARKER, 'kind', 'store', 'namespace', 'key', 'shape', 'evict', 'token', 'locked'] as const;

/** A change to one field of a ref: delete it, or set it to any JSON value or a plausible one. */
const edit = fc.record({
  field: fc.oneof(fc.constantFrom(...FIELDS), fc.string()),
  value: fc.oneof(
    fc.constant(undefined), // delete
    fc.jsonValue(),
    fc.constantFrom(1, 0, true, '', 'proxy', 'owned', 'ref', 'refmut', 'array', 'map', 'Float64Array', '__proto__', 'constructor', 'toString'),
  ),
});

/** Apply edits to a copy of a valid ref. */
function mutate(ref: ProxyRef, edits: { field: string; value: unknown }[]): Record<string, unknown> {
  const out: Record<string, unknown> = { ...ref };
  for (const { field, value } of edits) {
    if (value === undefined) delete out[field];
    else Object.defineProperty(out, field, { value, enumerable: true, writable: true, configurable: true });
  }
  return out;
}

function validRef(store: { name: string; namespace: string }, overrides: Partial<ProxyRef> = {}): ProxyRef {
  return { [REF_MARKER]: 1, kind: 'proxy', store: store.name, namespace: store.namespace, key: 'some-key', shape: 'object', ...overrides };
}

/** Runs `fn`; passes when it returns, or throws a ProxyStoreError. */
function returnsOrThrowsProxyStoreError(fn: () => unknown): unknown {
  try {
    return fn();
  } catch (err) {
    expect(err, String(err)).toBeInstanceOf(ProxyStoreError);
    return undefined;
  }
}

describe('fromRef on anything', () => {
  test('any JSON value gives a proxy or a ProxyStoreError', () => {
    fc.assert(
      fc.property(fc.jsonValue(), (value) => {
        const p = returnsOrThrowsProxyStoreError(() => fromRef(value));
        if (p !== undefined) expect(isProxy(p)).toBe(true);
      }),
      { numRuns: 1000 },
    );
  });

  test('any JavaScript value gives a proxy or a ProxyStoreError', () => {
    fc.assert(
      fc.property(fc.anything({ withMap: true, withSet: true, withBigInt: true, withDate: true, withTypedArray: true, withNullPrototype: true, withBoxedValues: true }), (value) => {
        returnsOrThrowsProxyStoreError(() => fromRef(value));
      }),
      { numRuns: 1000 },
    );
  });

  test('any mutation of a valid ref gives a proxy or a ProxyStoreError', ({ store }) => {
    fc.assert(
      fc.property(fc.array(edit, { minLength: 1, maxLength: 4 }), (edits) => {
        returnsOrThrowsProxyStoreError(() => fromRef(mutate(validRef(store), edits)));
      }),
      { numRuns: 1000 },
    );
  });
});

describe('proxyReviver on anything', () => {
  test('any JSON text parses to its value or throws a ProxyStoreError', () => {
    fc.assert(
      fc.property(fc.jsonValue(), (value) => {
        const text = JSON.stringify(value);
        const revived = returnsOrThrowsProxyStoreError(() => JSON.parse(text, proxyReviver));
        // Nothing in plain JSON is a ref: the value comes back as JSON.parse gives it.
        if (!text.includes(REF_MARKER)) expect(revived).toEqual(JSON.parse(text));
      }),
      { numRuns: 1000 },
    );
  });

  test('JSON with mutated refs nested anywhere parses or throws a ProxyStoreError', ({ store }) => {
    const payload = fc
      .tuple(fc.jsonValue(), fc.array(edit, { maxLength: 3 }), fc.array(edit, { maxLength: 3 }))
      .map(([json, e1, e2]) => ({ json, first: mutate(validRef(store), e1), deep: [{ x: mutate(validRef(store), e2) }] }));
    fc.assert(
      fc.property(payload, (value) => {
        returnsOrThrowsProxyStoreError(() => JSON.parse(JSON.stringify(value), proxyReviver));
      }),
      { numRuns: 1000 },
    );
  });
});

describe('resolving revived refs', () => {
  test('a proxy revived from a mutated ref of this store resolves or rejects with a ProxyStoreError', async ({ store }) => {
    await fc.assert(
      fc.asyncProperty(fc.array(edit, { minLength: 1, maxLength: 3 }), fc.boolean(), async (edits, ephemeral) => {
        const real = toRef(await store.proxy({ secret: 1 }, { evict: ephemeral }));
        try {
          const p = returnsOrThrowsProxyStoreError(() => fromRef(mutate(real, edits)));
          if (p === undefined) return;
          try {
            await resolve(p);
          } catch (err) {
            expect(err, String(err)).toBeInstanceOf(ProxyStoreError);
          }
        } finally {
          await store.evict(real.key);
        }
      }),
      { numRuns: 200 },
    );
  });

  test('a stored value that is a mutated ref reads back as a proxy or fails with a ProxyStoreError', async ({ store }) => {
    // Our proxy extension around any ref-like object, as a foreign writer could store it: packed
    // as a record (how the library writes refs) or as a plain msgpack map.
    const packers = [new Packr({ structuredClone: true }), new Packr({ useRecords: false })];
    let proxies = 0;
    await fc.assert(
      fc.asyncProperty(fc.array(edit, { maxLength: 3 }), fc.constantFrom(0, 1), async (edits, which) => {
        const header = Buffer.from([0xb7, 0x4d, 0x6f, 0xd4, PROXY_EXTENSION_TYPE, 0]);
        await store.connector.set('crafted', Buffer.concat([header, packers[which]!.pack(mutate(validRef(store), edits))]));
        try {
          const value = await store.get('crafted').catch((err: unknown) => {
            expect(err, String(err)).toBeInstanceOf(ProxyStoreError);
            return undefined;
          });
          if (value !== undefined) {
            expect(isProxy(value)).toBe(true);
            proxies++;
          }
        } finally {
          await store.evict('crafted');
        }
      }),
      { numRuns: 300 },
    );
    expect(proxies).toBeGreaterThan(0);
  });
});
