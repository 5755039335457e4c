/**
 * Issue 12 point 6: a Redis that lost its data (restarted empty) is named as such. The test
 * starts its own redis-server (no persistence), puts and owns objects, restarts it empty on the
 * same port, and checks that a resolve, a consume, a handle call and a renewal say
 * RedisDataLostError instead of "missing" or "its lease ended"; and that a genuine miss on a
 * server that lost nothing is still a ProxyResolveMissingKeyError.
 */
import { Redis } from 'ioredis';
import { startRedisServer, type LocalRedis } from '../scripts/local-redis.js';
import {
  ProxyResolveMissingKeyError,
  RedisConnector,
  RedisDataLostError,
  Store,
  borrow,
  fromRef,
  isValid,
  mutBorrow,
  resolve,
  toRef,
  update,
} from '../src/index.js';
import { renewalOf } from '../src/ownership/renewal.js';
import { afterEach, describe, expect, test } from './harness/fixtures.js';

let server: LocalRedis | undefined;
afterEach(async () => {
  await server?.stop();
  server = undefined;
});

async function restartEmpty(): Promise<void> {
  const port = (server as LocalRedis).port;
  await (server as LocalRedis).stop();
  server = await startRedisServer({ port });
}

describe('a Redis restarted empty', () => {
  test('resolve, consume, handle calls and renewals say RedisDataLostError', async ({ namespace }) => {
    server = await startRedisServer();
    const store = new Store(`lost-${namespace}`, new RedisConnector({ url: server.url, namespace }), { leaseTtl: 1, register: true });
    try {
      const plain = await store.proxy({ a: 1 });
      const ephemeral = await store.proxy({ b: 2 }, { evict: true });
      const owned = await store.ownedProxy({ c: 3 });
      const held = await store.ownedProxy({ d: 4 });
      const shared = await borrow(held);
      await store.connector.ready();
      // Not resolved yet: the first resolve goes to Redis.
      const plainAgain = fromRef<{ a: number }>(toRef(plain));
      const ephemeralAgain = fromRef<{ b: number }>(toRef(ephemeral));

      await restartEmpty();

      await expect(resolve(plainAgain)).rejects.toThrow(RedisDataLostError);
      await expect(resolve(plainAgain)).rejects.toThrow(/Redis lost its data/);
      await expect(resolve(ephemeralAgain)).rejects.toThrow(RedisDataLostError);
      await expect(mutBorrow(owned)).rejects.toThrow(RedisDataLostError);
      // The handle is retired, and says why when used again.
      expect(isValid(owned)).toBe(false);
      await expect(update(owned)).rejects.toThrow(RedisDataLostError);
      // The renewal of the borrow finds its lease gone, and says why.
      await renewalOf(store).tick();
      expect(isValid(shared)).toBe(false);
      await expect(borrow(held)).rejects.toThrow(RedisDataLostError);
    } finally {
      await store.close();
    }
  });

  test('a miss on a server that lost nothing is still "missing"; a connector made after the loss blames nothing', async ({ namespace }) => {
    server = await startRedisServer();
    const store = new Store(`kept-${namespace}`, new RedisConnector({ url: server.url, namespace }), { register: true });
    try {
      const p = await store.proxy('x');
      const ref = toRef(p);
      await store.evict(ref.key);
      await expect(resolve(fromRef(ref))).rejects.toThrow(ProxyResolveMissingKeyError);
      await expect(resolve(fromRef(ref))).rejects.not.toThrow(RedisDataLostError);

      await restartEmpty();
      const later = new Store(`later-${namespace}`, new RedisConnector({ url: server.url, namespace }), { register: true });
      try {
        const error = await resolve(fromRef({ ...ref, store: later.name })).catch((e: unknown) => e);
        expect(error).toBeInstanceOf(ProxyResolveMissingKeyError);
      } finally {
        await later.close();
      }
      // The marker has a TTL: nothing is left without one.
      const admin = new Redis(server.url);
      try {
        const markers = await admin.keys(`${namespace}:generation:*`);
        expect(markers.length).toBe(1);
        expect(await admin.pttl(markers[0] as string)).toBeGreaterThan(0);
      } finally {
        admin.disconnect();
      }
    } finally {
      await store.close();
    }
  });
});
