/**
 * A lapsed handle never reads. Resolving an OwnedProxy, RefProxy or
 * RefMutProxy checks its lease in Redis in the same script as the read
 * (lua/handleRead.lua): a borrow whose lease lapsed, because its process
 * stalled past leaseTtl while the owner took a mutable borrow and wrote,
 * rejects ReferenceInvalidError and sees neither the old nor the new value.
 */
import {
  ReferenceInvalidError,
  borrow,
  drop,
  getKey,
  isValid,
  mutBorrow,
  release,
  resolve,
  toRef,
  update,
  type OwnedProxy,
  type RefMutProxy,
} from '../src/index.js';
import { objectKeys } from '../src/ownership/handle.js';
import { renewalOf } from '../src/ownership/renewal.js';
import { proxyState } from '../src/proxy/proxy.js';
import { childEnv, killAllChildren, spawnChild } from './harness/child.js';
import { afterEach, describe, expect, test } from './harness/ownership.js';

const LEASE_TTL = 1;

afterEach(async () => {
  await killAllChildren();
});

/** Retry `attempt` until it resolves (or the deadline passes: its last error then). */
async function retryUntil<T>(attempt: () => Promise<T>, timeoutMs: number): Promise<T> {
  const start = Date.now();
  for (;;) {
    try {
      return await attempt();
    } catch (err) {
      if (Date.now() - start > timeoutMs) throw err;
      await new Promise((r) => setTimeout(r, 100));
    }
  }
}

describe('a lapsed handle never reads', () => {
  test.override({ storeOptions: { leaseTtl: LEASE_TTL } });

  test('a borrow whose lease ended in Redis rejects ReferenceInvalidError on resolve, reads nothing, and is retired', async ({ store, redis }) => {
    const owned: OwnedProxy<{ v: string }> = await store.ownedProxy({ v: 'old' }, { populateTarget: false });
    const shared = await borrow(owned);
    const keys = objectKeys(store, getKey(owned));
    // The lease ends now, as when its process stalled: the owner's renewal keeps the object seen, so it is purged.
    await redis.zadd(keys.leases, 'XX', Date.now() - 1, proxyState(shared)!.token!);
    const err = await resolve(shared).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ReferenceInvalidError);
    expect((err as Error).message).toMatch(/lease expired/);
    expect(isValid(shared)).toBe(false);
    // The owner reads through the same check, and it holds.
    expect(await resolve(owned)).toEqual({ v: 'old' });
    await drop(owned);
  });

  test('a child stopped past its borrow\'s lease, while the owner writes, finds its borrow invalid and reads nothing', async ({ store, redis, redisUrl, namespace }) => {
    const owned: OwnedProxy<{ v: string }> = await store.ownedProxy({ v: 'old' });
    const child = spawnChild('test/children/lapse-reader.ts', { env: { ...childEnv({ redisUrl, namespace }), LEASE_TTL: String(LEASE_TTL) } });
    await child.waitForMessage((m) => (m as { ready?: boolean }).ready === true, 20_000);
    const shared = await borrow(owned, { populateTarget: false });
    const token = proxyState(shared)!.token!;
    await child.send({ ref: toRef(shared) });
    await child.waitForMessage((m) => (m as { held?: boolean }).held === true);
    // Until the child's claim reaches Redis, this process renews the borrow it sent (transit): wait for it.
    const record = objectKeys(store, getKey(owned)).record;
    await expect.poll(() => redis.hget(record, `h:${token}`), { timeout: 10_000 }).not.toBe(renewalOf(store).holder);
    child.kill('SIGSTOP');
    try {
      // Its lease lapses; then the owner writes.
      const writer: RefMutProxy<{ v: string }> = await retryUntil(() => mutBorrow(owned), 10 * LEASE_TTL * 1000);
      (await resolve(writer)).v = 'new';
      await update(writer);
      await release(writer);
    } finally {
      child.kill('SIGCONT');
    }
    await child.send({ resolve: 1 });
    const answer = await child.waitForMessage<{ value?: unknown; error?: string; message?: string }>(
      (m) => 'value' in (m as object) || 'error' in (m as object),
    );
    expect(answer.value).toBeUndefined();
    expect(answer.error).toBe('ReferenceInvalidError');
    child.kill('SIGTERM');
    await child.exited;
    expect(await store.get(getKey(owned))).toEqual({ v: 'new' });
    await drop(owned);
  });
});
