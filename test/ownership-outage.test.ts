/**
 * A Redis outage longer than leaseTtl must not wipe the objects of live
 * holders. The test pauses its own redis-server (SIGSTOP) for 2 x leaseTtl
 * and resumes it: Redis then expires keys at once and runs the queued
 * commands in whatever order they arrive. Owned objects survive because
 * their keys expire 3 x leaseTtl after their last lease (the outage margin),
 * and because the first script on an object after a silence longer than
 * leaseTtl / 2 grants lapsed leases leaseTtl more instead of purging them;
 * live holders renew before that ends. A holder that really died (SIGKILL)
 * still loses its lease within leaseTtl after Redis is back.
 *
 * Pauses a server: single only, on a server the test starts itself.
 */
import { Redis } from 'ioredis';
import { startRedisServer, type LocalRedis } from '../scripts/local-redis.js';
import { RedisConnector, Store, borrow, drop, getKey, isValid, mutBorrow, release, resolve, toRef, type OwnedProxy } from '../src/index.js';
import { objectKeys } from '../src/ownership/handle.js';
import { renewalOf } from '../src/ownership/renewal.js';
import { proxyState } from '../src/proxy/proxy.js';
import { childEnv, killAllChildren, spawnChild, type ChildHandle } from './harness/child.js';
import { afterAll, afterEach, beforeAll, describe, expect, test } from './harness/fixtures.js';
import { targetEnv } from './harness/target.js';

const LEASE_TTL = 1;

describe('a Redis outage of 2 x leaseTtl', () => {
  let server: LocalRedis;
  let admin: Redis;
  beforeAll(async () => {
    server = await startRedisServer();
    admin = new Redis(server.url);
  });
  afterEach(async () => {
    await killAllChildren();
  });
  afterAll(async () => {
    admin?.disconnect();
    await server?.stop();
  });

  /** A child holding a borrow of `owned`, claimed in Redis (so this process no longer renews it). */
  async function lendToChild(store: Store, owned: OwnedProxy<unknown>, namespace: string): Promise<{ child: ChildHandle; token: string }> {
    const child = spawnChild('test/children/lapse-reader.ts', {
      env: { ...childEnv({ redisUrl: server.url, namespace }), ...targetEnv({ kind: 'single', url: server.url }), LEASE_TTL: String(LEASE_TTL) },
    });
    await child.waitForMessage((m) => (m as { ready?: boolean }).ready === true, 20_000);
    const shared = await borrow(owned, { populateTarget: false });
    const token = proxyState(shared)!.token!;
    await child.send({ ref: toRef(shared) });
    await child.waitForMessage((m) => (m as { held?: boolean }).held === true);
    const record = objectKeys(store, getKey(owned)).record;
    await expect.poll(() => admin.hget(record, `h:${token}`), { timeout: 10_000 }).not.toBe(renewalOf(store).holder);
    return { child, token };
  }

  test('loses no object of a live holder, keeps its handles valid, and still ends a dead holder\'s lease', async ({ namespace }) => {
    const store = new Store(`store-${namespace}`, new RedisConnector({ url: server.url, namespace }), { register: true, leaseTtl: LEASE_TTL });
    try {
      const lone: OwnedProxy<{ n: number }> = await store.ownedProxy({ n: 1 });
      const lent: OwnedProxy<{ n: number }> = await store.ownedProxy({ n: 2 });
      const live = await lendToChild(store, lent, namespace);
      const dead = await lendToChild(store, lent, namespace);
      dead.child.kill('SIGKILL');
      await dead.child.exited;
      const leases = objectKeys(store, getKey(lent)).leases;

      process.kill(server.pid, 'SIGSTOP');
      await new Promise((r) => setTimeout(r, 2 * LEASE_TTL * 1000));
      process.kill(server.pid, 'SIGCONT');
      const back = Date.now();

      // Nothing of a live holder is lost, and every live handle still works.
      expect(await admin.exists(...Object.values(objectKeys(store, getKey(lone))).slice(0, 3))).toBe(3);
      expect(await admin.zscore(leases, live.token)).not.toBeNull();
      expect(isValid(lone) && isValid(lent)).toBe(true);
      await release(await borrow(lone));
      await live.child.send({ resolve: 1 });
      expect(await live.child.waitForMessage((m) => 'value' in (m as object) || 'error' in (m as object))).toEqual({ value: { n: 2 } });

      // The dead child's lease ends within leaseTtl of Redis being back (it got one grace, and nobody renews it).
      await expect.poll(() => admin.zscore(leases, dead.token), { timeout: 3 * LEASE_TTL * 1000, interval: 50 }).toBeNull();
      const lostAfterMs = Date.now() - back;
      console.info(`the dead holder's lease was gone ${lostAfterMs} ms after Redis came back (leaseTtl ${LEASE_TTL * 1000} ms)`);
      expect(lostAfterMs).toBeLessThanOrEqual(LEASE_TTL * 1000 + 1_000);
      // The live child's borrow holds on; once it ends, the owner writes.
      expect(await admin.zscore(leases, live.token)).not.toBeNull();
      live.child.kill('SIGKILL');
      await live.child.exited;
      await expect.poll(() => mutBorrow(lent).then(() => true, () => false), { timeout: 4 * LEASE_TTL * 1000 }).toBe(true);
      await drop(lone);
    } finally {
      await store.close();
      const left = await admin.keys(`${namespace}:{*`);
      if (left.length > 0) await admin.del(...left);
    }
  });

  test('an owner alone, whose lease ended by the clock during the pause, keeps its object and its handle', async ({ namespace }) => {
    const store = new Store(`store-${namespace}`, new RedisConnector({ url: server.url, namespace }), { register: true, leaseTtl: LEASE_TTL });
    try {
      const owned: OwnedProxy<number[]> = await store.ownedProxy([1, 2, 3], { populateTarget: false });
      const leases = objectKeys(store, getKey(owned)).leases;
      const end = Number(await admin.zscore(leases, proxyState(owned)!.token!));
      process.kill(server.pid, 'SIGSTOP');
      await new Promise((r) => setTimeout(r, 2 * LEASE_TTL * 1000));
      process.kill(server.pid, 'SIGCONT');
      const [sec] = (await admin.time()) as unknown as [string];
      // The owner's lease ended during the pause by the clock...
      expect(Number(sec) * 1000).toBeGreaterThan(end);
      // ...yet the object and its handle survive.
      expect(await resolve(owned)).toEqual([1, 2, 3]);
      await drop(owned);
    } finally {
      await store.close();
      const left = await admin.keys(`${namespace}:{*`);
      if (left.length > 0) await admin.del(...left);
    }
  });
});
