/**
 * A Redis outage longer than leaseTtl must not wipe the static objects of a
 * live process. The test pauses its own redis-server (SIGSTOP) for
 * 2 x leaseTtl and resumes it: Redis then expires keys at once and runs the
 * queued commands. A static part survives because its keys expire
 * 2 x leaseTtl after its lease end (the outage margin), and because the first
 * script on the part after a silence longer than leaseTtl / 2 gives it a fresh
 * lease instead of ending it. A process that really died (SIGKILL) is touched
 * by nobody: its static objects go when their keys expire, 2 x leaseTtl after
 * its last lease end.
 *
 * Pauses a server: single only, on a server the test starts itself.
 */
import { Redis } from 'ioredis';
import { startRedisServer, type LocalRedis } from '../../scripts/local-redis.js';
import { RedisConnector, StaticLifetime, Store, getKey } from '../../src/index.js';
import { STATIC_MARGIN_LEASES } from '../../src/lifetimes/base.js';
import { kResetStatic } from '../../src/lifetimes/static.js';
import { childEnv, killAllChildren, spawnChild } from '../harness/child.js';
import { afterAll, afterEach, beforeAll, describe, expect, test } from '../harness/fixtures.js';
import { targetEnv } from '../harness/target.js';

const LEASE_TTL = 1;
const LEASE_MS = LEASE_TTL * 1000;

async function serverNow(redis: Redis): Promise<number> {
  const [s, us] = await redis.time();
  return Number(s) * 1000 + Math.floor(Number(us) / 1000);
}

describe('the StaticLifetime across a Redis outage of 2 x leaseTtl', () => {
  let server: LocalRedis;
  let admin: Redis;
  beforeAll(async () => {
    server = await startRedisServer();
    admin = new Redis(server.url);
  });
  afterEach(async () => {
    await killAllChildren();
    await StaticLifetime.instance().close();
    StaticLifetime[kResetStatic]();
  });
  afterAll(async () => {
    admin?.disconnect();
    await server?.stop();
  });

  test("keeps every static object of a live process, whose lifetime goes on; a killed process's objects go at their keys' expiry", async ({
    namespace,
  }) => {
    const store = new Store(`store-${namespace}`, new RedisConnector({ url: server.url, namespace }), { register: true, leaseTtl: LEASE_TTL });
    try {
      const lifetime = StaticLifetime.instance();
      const mine = [
        await store.put('a', { lifetime }),
        ...(await store.putBatch([1, 2], { lifetime })),
        getKey(await store.proxy([1, 2, 3], { lifetime })),
      ];
      const part = lifetime.idIn(store) as string;
      const meta = store.connector.keys.lifetime('lt', part);

      // A child with static objects of its own, killed just before the outage.
      const child = spawnChild('test/children/static-owner.ts', {
        args: ['wait'],
        env: { ...childEnv({ redisUrl: server.url, namespace }), ...targetEnv({ kind: 'single', url: server.url }), LEASE_TTL: String(LEASE_TTL) },
      });
      const ready = await child.waitForMessage<{ keys: string[]; lifetimeId: string }>((m) => (m as { ready?: boolean }).ready === true, 30_000);
      child.kill('SIGKILL');
      await child.exited;
      const deadMeta = store.connector.keys.lifetime('lt', ready.lifetimeId);
      const deadData = ready.keys.map((k) => store.connector.dataKey(k));
      // Its last lease end: nothing renews it from now on.
      const deadEnd = Number(await admin.hget(deadMeta, 'expiresAt'));

      const endBefore = Number(await admin.hget(meta, 'expiresAt'));
      process.kill(server.pid, 'SIGSTOP');
      await new Promise((r) => setTimeout(r, 2 * LEASE_MS));
      process.kill(server.pid, 'SIGCONT');
      const back = Date.now();
      const backServer = await serverNow(admin);
      // Both lease ends passed by the clock during the pause...
      expect(backServer).toBeGreaterThan(endBefore);
      expect(backServer).toBeGreaterThan(deadEnd);
      // ...and the killed child's objects are still there too: the margin does not know who is alive.
      expect(await admin.exists(...deadData)).toBe(deadData.length);
      // Watch them from now on, on a connection of their own, while the live process goes on.
      const watcher = new Redis(server.url);
      const deadGone = (async () => {
        const deadline = Date.now() + 3 * STATIC_MARGIN_LEASES * LEASE_MS;
        while ((await watcher.exists(...deadData, deadMeta)) > 0) {
          if (Date.now() > deadline) throw new Error("the killed process's static objects are still there");
          await new Promise((r) => setTimeout(r, 20));
        }
        return { at: Date.now(), server: await serverNow(watcher) };
      })().finally(() => watcher.disconnect());

      // Every static object of this (live) process is there, and so is its part.
      expect(await admin.exists(...mine.map((k) => store.connector.dataKey(k)))).toBe(mine.length);
      expect(await admin.hget(meta, 'state')).toBe('open');
      for (const key of mine) expect(await store.exists(key)).toBe(true);
      // The heartbeat renews the same part: a lease end after Redis came back.
      await expect.poll(async () => Number(await admin.hget(meta, 'expiresAt')), { timeout: 3 * LEASE_MS, interval: 50 }).toBeGreaterThan(backServer);
      expect(lifetime.idIn(store)).toBe(part);
      // New puts go under it.
      const later = await store.put('after the outage', { lifetime });
      expect(later.startsWith(`${part}~`)).toBe(true);
      expect(lifetime.idIn(store)).toBe(part);
      // And it keeps renewing: after another 3 leases the objects are all still there.
      await new Promise((r) => setTimeout(r, 3 * LEASE_MS));
      expect(await admin.exists(...[...mine, later].map((k) => store.connector.dataKey(k)))).toBe(mine.length + 1);
      expect(Number(await admin.hget(meta, 'expiresAt'))).toBeGreaterThan(await serverNow(admin));

      // The killed child's objects go at their keys' expiry, 2 leases after its last lease end
      // (nothing touches a dead process's part, so nothing grants it a fresh lease).
      const { at: goneAt, server: goneServer } = await deadGone;
      console.info(
        `the killed process's static objects were gone ${goneAt - back} ms after Redis came back ` +
          `(${goneServer - deadEnd} ms after its last lease end; leaseTtl ${LEASE_MS} ms, outage ${2 * LEASE_MS} ms)`,
      );
      expect(goneServer - deadEnd).toBeGreaterThanOrEqual(STATIC_MARGIN_LEASES * LEASE_MS);
      expect(goneServer - deadEnd).toBeLessThanOrEqual(STATIC_MARGIN_LEASES * LEASE_MS + 1_000);
      // So, killed as a 2-lease outage began, they are gone within one lease of Redis coming back.
      expect(goneAt - back).toBeLessThanOrEqual(LEASE_MS + 250);

      await lifetime.close();
      for (const key of [...mine, later]) expect(await store.exists(key)).toBe(false);
    } finally {
      await store.close();
      const left = await admin.keys(`${namespace}:{*`);
      if (left.length > 0) await admin.del(...left);
    }
  });
});
