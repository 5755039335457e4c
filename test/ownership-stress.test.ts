/**
 * Stress: 8 processes keep asking the owner's process for random shared and
 * mutable borrows of one object, for a few seconds; they receive them as
 * refs, hold them a moment and release them themselves, logging when they
 * held what. No mutable borrow may overlap any other borrow, no increment
 * made through a mutable borrow may be lost, and the owner can drop at the
 * end.
 */
import { MutableBorrowError, borrow, drop, getKey, mutBorrow, toRef } from '../src/index.js';
import { childEnv, killAllChildren, spawnChild, type ChildHandle } from './harness/child.js';
import { afterEach, describe, expect, test } from './harness/ownership.js';

const PROCESSES = 8;
const DURATION_MS = 3_000;
// Generous against a loaded machine: a holder would have to stall this long to lose its borrow.
const LEASE_TTL = 2;

interface Interval {
  pid: number;
  kind: 'shared' | 'mut';
  acquiredAt: number;
  releasedAt: number;
  released: boolean;
  updated: boolean;
}

afterEach(async () => {
  await killAllChildren();
});

const overlap = (a: Interval, b: Interval) => a.acquiredAt < b.releasedAt && b.acquiredAt < a.releasedAt;

/** Call `fn` on every message the child sends (the harness offers waitForMessage; a predicate that never matches is a listener). */
function onEachMessage(child: ChildHandle, fn: (msg: unknown) => void): void {
  child
    .waitForMessage((m) => {
      fn(m);
      return false;
    }, 120_000)
    .catch(() => undefined); // settles when the child exits
}

describe('stress', () => {
  test.override({ storeOptions: { leaseTtl: LEASE_TTL } });

  test(`${PROCESSES} processes borrowing one object: a mutable borrow never overlaps another borrow`, { timeout: 90_000 }, async ({
    store,
    redisUrl,
    namespace,
  }) => {
    const owned = await store.ownedProxy({ n: 0 });
    let granted = 0;
    let refused = 0;
    const children: ChildHandle[] = Array.from({ length: PROCESSES }, () =>
      spawnChild('test/children/stress-borrower.ts', {
        env: { ...childEnv({ redisUrl, namespace }), LEASE_TTL: String(LEASE_TTL), DURATION_MS: String(DURATION_MS) },
      }),
    );
    // The owner's process answers every request with a borrow sent as a ref, or "busy".
    for (const child of children) {
      const serve = async (msg: { want?: 'shared' | 'mut'; id?: number }) => {
        if (!msg.want) return;
        try {
          const handle = msg.want === 'mut' ? await mutBorrow(owned) : await borrow(owned);
          granted++;
          await child.send({ id: msg.id, ref: toRef(handle) });
        } catch (err) {
          if (err instanceof MutableBorrowError) {
            refused++;
            await child.send({ id: msg.id, busy: true });
          } else {
            await child.send({ id: msg.id, error: String(err) });
          }
        }
      };
      onEachMessage(child, (m) => void serve(m as { want?: 'shared' | 'mut'; id?: number }));
    }
    await Promise.all(children.map((c) => c.waitForMessage((m) => (m as { ready?: boolean }).ready === true, 40_000)));
    await Promise.all(children.map((c) => c.send({ go: true })));
    const results = await Promise.all(
      children.map((c) => c.waitForMessage<{ done: Interval[]; busy: number }>((m) => 'done' in (m as object), 60_000)),
    );
    await Promise.all(children.map((c) => c.exited));

    const all = results.flatMap((r) => r.done);
    const held = all.filter((i) => i.released);
    const mutable = held.filter((i) => i.kind === 'mut');
    const shared = held.filter((i) => i.kind === 'shared');
    const violations: [Interval, Interval][] = [];
    for (const m of mutable) for (const other of held) if (other !== m && overlap(m, other)) violations.push([m, other]);
    let sharedOverlaps = 0;
    for (let i = 0; i < shared.length; i++) for (let j = i + 1; j < shared.length; j++) if (overlap(shared[i]!, shared[j]!)) sharedOverlaps++;
    const updates = all.filter((i) => i.updated).length;
    const lapsed = all.length - held.length;

    console.info(
      `stress: ${PROCESSES} processes, ${all.length} borrows held (${mutable.length} mutable, ${shared.length} shared, ` +
        `${lapsed} lapsed), ${granted} granted, ${refused} refused as busy, ${sharedOverlaps} overlapping shared pairs, ` +
        `${updates} updates, ${violations.length} violations`,
    );
    expect(violations).toEqual([]);
    expect(mutable.length).toBeGreaterThanOrEqual(10);
    expect(shared.length).toBeGreaterThanOrEqual(10);
    // The test has teeth only if borrows really ran concurrently and contended.
    expect(sharedOverlaps).toBeGreaterThan(0);
    expect(refused).toBeGreaterThan(0);
    expect(granted).toBe(all.length);
    // No increment made through a mutable borrow was lost.
    const fresh = await store.get<{ n: number }>(getKey(owned));
    expect(fresh).toEqual({ n: updates });
    // Every borrow was released by its holder: the owner drops at once.
    await drop(owned);
    expect(await store.exists(getKey(owned))).toBe(false);
  });
});
