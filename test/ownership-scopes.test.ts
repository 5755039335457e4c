/**
 * ProxyStore's tests/store/scopes_test.py, ported to run against a real
 * Redis. ProxyStore's `mark_refs_out_of_scope` is what `release` and the end
 * of a `submit` do here; its `ProcessPoolExecutor` test runs with a real
 * child process. Beyond the port: `submit` with a call that rejects or throws
 * still releases its borrows.
 */
import {
  MutableBorrowError,
  ReferenceInvalidError,
  borrow,
  drop,
  fromRef,
  isResolved,
  isValid,
  mutBorrow,
  release,
  resolve,
  submit,
  toRef,
  type OwnedProxy,
  type ProxyRef,
} from '../src/index.js';
import { startPeer } from './harness/peer.js';
import { describe, expect, test } from './harness/ownership.js';

describe('scopes_test.py', () => {
  test('future protocol: submit takes a promise, a thenable or a plain value', async ({ store }) => {
    const owned = await store.ownedProxy('value');
    const thenable: PromiseLike<number> = { then: (ok) => Promise.resolve(1).then(ok) };
    expect(await submit(() => Promise.resolve(1), { args: [await borrow(owned)] })).toBe(1);
    expect(await submit(() => thenable, { args: [await borrow(owned)] })).toBe(1);
    expect(await submit(() => 1, { args: [await borrow(owned)] })).toBe(1);
    await drop(owned);
  });

  test('mark refs out of scope (release ends borrows and frees the owners)', async ({ store }) => {
    const proxy1 = await store.ownedProxy('value1');
    const proxy2 = await store.ownedProxy('value2');
    const borrowed1 = await borrow(proxy1);
    const borrowed2 = await borrow(proxy1);
    const borrowed3 = await mutBorrow(proxy2);
    for (const b of [borrowed1, borrowed2, borrowed3]) await release(b);
    for (const b of [borrowed1, borrowed2, borrowed3]) expect(() => `${b}`).toThrow(ReferenceInvalidError);
    // Mutable borrows would fail if the prior borrows still existed.
    await release(await mutBorrow(proxy1));
    await release(await mutBorrow(proxy2));
    await drop(proxy1);
    await drop(proxy2);
  });

  test('mark refs out of scope duplicates (one borrow named twice is released once)', async ({ store }) => {
    const proxy = await store.ownedProxy('value');
    const borrowed = await borrow(proxy);
    await submit(() => undefined, { args: [borrowed], refs: [borrowed, borrowed] });
    expect(() => `${borrowed}`).toThrow(ReferenceInvalidError);
    await drop(proxy);
  });

  test('mark refs out of scope no owner (a borrow the callee already released is fine)', async ({ store }) => {
    // Python: a reference without its owner raises. Here a borrow's token is
    // all it takes to release it, in any process; the callee may release it first.
    const proxy = await store.ownedProxy('value');
    const borrowed = await borrow(proxy);
    const result = await submit(
      async (ref: ProxyRef) => {
        const revived = fromRef<string>(ref);
        await release(revived as never);
        return 'done';
      },
      { args: [borrowed] },
    );
    expect(result).toBe('done');
    await drop(proxy);
  });

  test('make out of scope callback (the borrow is invalid once the call settled)', async ({ store }) => {
    const proxy = await store.ownedProxy('value1');
    const borrowed = await borrow(proxy);
    await submit(async () => 'x', { refs: [borrowed] });
    expect(isValid(borrowed)).toBe(false);
    expect(() => `${borrowed}`).toThrow(ReferenceInvalidError);
    await drop(proxy);
  });

  test('submit registration', async ({ store }) => {
    const proxy1 = await store.ownedProxy(2);
    const proxy2 = await store.ownedProxy(3);
    const proxy3 = await store.ownedProxy(7);
    const borrow1 = await borrow(proxy1);
    const borrow2 = await borrow(proxy2);
    const borrow3 = await borrow(proxy3);
    // Python's kwargs have no JavaScript counterpart: both go in args.
    const testFunc = async (arg1: ProxyRef, kwarg1: ProxyRef): Promise<number> =>
      Number(await resolve(fromRef<number>(arg1))) + Number(await resolve(fromRef<number>(kwarg1)));
    const result = await submit(testFunc, { args: [borrow1, borrow2], refs: [borrow3] });
    expect(result).toBe(5);
    for (const p of [borrow1, borrow2, borrow3]) expect(() => Number(p)).toThrow(ReferenceInvalidError);
    for (const owner of [proxy1, proxy2, proxy3]) await drop(owner);
  });

  test('submit does not resolve (and passes proxies as refs)', async ({ store }) => {
    const proxy = await store.ownedProxy('value', { populateTarget: false });
    const borrowed = await borrow(proxy);
    expect(isResolved(proxy)).toBe(false);
    expect(isResolved(borrowed)).toBe(false);
    let received: ProxyRef[] = [];
    const result = await submit(
      (...refs: ProxyRef[]) => {
        received = refs;
        return Promise.resolve('result');
      },
      { args: [proxy, borrowed] },
    );
    expect(result).toBe('result');
    expect(received.map((r) => r.kind)).toEqual(['owned', 'ref']);
    expect(isResolved(proxy)).toBe(false);
    expect(isResolved(borrowed)).toBe(false);
    // The owner moved with its ref; whoever revives the ref owns the object.
    await drop(fromRef<string>(received[0]) as OwnedProxy<string>);
  });

  test('submit with multiprocessing (a real child process resolves the borrow)', async ({ store, redisUrl, namespace }) => {
    const proxy = await store.ownedProxy('value');
    const peer = await startPeer({ redisUrl, namespace });
    const borrowed = await borrow(proxy);
    const isString = await submit(
      async (ref: ProxyRef) => {
        const reply = await peer.ok({ op: 'receive', slot: 'b', ref });
        return typeof reply.value === 'string';
      },
      { args: [borrowed] },
    );
    // The call returned true and the borrow was marked invalid.
    expect(isString).toBe(true);
    expect(() => `${borrowed}`).toThrow(ReferenceInvalidError);
    // The child never released it; submit did, so the owner can drop.
    await drop(proxy);
    await peer.ok({ op: 'exit' });
    await peer.child.exited;
  });
});

describe('submit ends its borrows however the call ends', () => {
  test('a call whose promise rejects still releases its borrows', async ({ store }) => {
    const owned = await store.ownedProxy([1, 2, 3]);
    const shared = await borrow(owned);
    const mutableOwner = await store.ownedProxy({ n: 1 });
    const mutable = await mutBorrow(mutableOwner);
    await expect(borrow(mutableOwner)).rejects.toThrow(MutableBorrowError);
    const failing = submit(async () => Promise.reject(new Error('worker crashed')), { args: [shared, mutable] });
    await expect(failing).rejects.toThrow('worker crashed');
    // When the caller resumes, the borrows are over: drop succeeds at once.
    await drop(owned);
    await drop(mutableOwner);
  });

  test('a call that throws synchronously still releases its borrows', async ({ store }) => {
    const owned = await store.ownedProxy('x');
    const shared = await borrow(owned);
    await expect(
      submit(
        () => {
          throw new Error('bad submit');
        },
        { args: [shared] },
      ),
    ).rejects.toThrow('bad submit');
    await drop(owned);
  });

  test('borrows nested in args are released when listed in refs', async ({ store }) => {
    const owned = await store.ownedProxy('x');
    const shared = await borrow(owned);
    const payload = JSON.stringify({ job: { input: shared } }); // the borrow moves into the JSON
    expect(isValid(shared)).toBe(false);
    await submit(async (text: string) => JSON.parse(text) as unknown, { args: [payload], refs: [shared] });
    await drop(owned);
  });

  test('the returned promise settles with the call: fulfilled value, or its error', async ({ store }) => {
    const owned = await store.ownedProxy('x');
    expect(await submit(async (ref: ProxyRef) => ref.kind, { args: [await borrow(owned)] })).toBe('ref');
    const err = new TypeError('typed');
    await expect(submit(async () => Promise.reject(err), { args: [await borrow(owned)] })).rejects.toBe(err);
    await drop(owned);
  });
});

test('toRef of a released borrow is ReferenceInvalidError', async ({ store }) => {
  const owned = await store.ownedProxy('x');
  const shared = await borrow(owned);
  await release(shared);
  expect(() => toRef(shared)).toThrow(ReferenceInvalidError);
  await drop(owned);
});
