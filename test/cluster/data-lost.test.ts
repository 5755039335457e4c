/**
 * Issue 12 point 6 on a Redis Cluster: a master restarted empty (3 masters, no replicas, a
 * cluster this file starts itself). Resolves of objects on that master, and handle calls and
 * renewals on it, say RedisDataLostError; objects on the other masters still resolve, and a
 * genuine miss there is still "missing".
 */
import calculateSlot from 'cluster-key-slot';
import { startRedisCluster, type ManagedRedisCluster } from '../../scripts/local-redis.js';
import {
  ProxyResolveMissingKeyError,
  RedisConnector,
  RedisDataLostError,
  Store,
  borrow,
  fromRef,
  getKey,
  isValid,
  mutBorrow,
  resolve,
  toRef,
  type OwnedProxy,
} from '../../src/index.js';
import { renewalOf } from '../../src/ownership/renewal.js';
import { afterAll, beforeAll, describe, expect, onTestFinished, test } from '../harness/fixtures.js';

let cluster: ManagedRedisCluster;

beforeAll(async () => {
  cluster = await startRedisCluster({ masters: 3 });
}, 120_000);

afterAll(async () => {
  await cluster?.stop();
});

describe('a Cluster master restarted empty', () => {
  test('its objects say RedisDataLostError; the other masters\' objects are untouched', async ({ namespace }) => {
    const store = new Store(`lost-${namespace}`, new RedisConnector({ nodes: cluster.nodes, namespace }), { register: true, leaseTtl: 30 });
    onTestFinished(() => store.close());
    const shards = await cluster.shards();
    const master0 = shards[0]!;
    const onMaster0 = (key: string) => {
      const slot = calculateSlot(store.connector.dataKey(key));
      return master0.slots.some(([a, b]) => slot >= a && slot <= b);
    };
    // Enough objects that some land on master 0 and some elsewhere.
    const refs = [];
    for (let i = 0; i < 30; i++) refs.push(toRef(await store.proxy({ i })));
    const owners: OwnedProxy<{ o: number }>[] = [];
    for (let i = 0; i < 12; i++) owners.push(await store.ownedProxy({ o: i }));
    const lostRefs = refs.filter((r) => onMaster0(r.key));
    const keptRefs = refs.filter((r) => !onMaster0(r.key));
    const lostOwner = owners.find((o) => onMaster0(getKey(o)));
    const keptOwner = owners.find((o) => !onMaster0(getKey(o)));
    expect(lostRefs.length > 0 && keptRefs.length > 0 && lostOwner && keptOwner).toBeTruthy();
    const shared = await borrow(lostOwner!);

    await cluster.restartMasterEmpty(0);

    for (const ref of lostRefs.slice(0, 3)) await expect(resolve(fromRef(ref))).rejects.toThrow(RedisDataLostError);
    for (const ref of keptRefs.slice(0, 3)) expect(await resolve(fromRef(ref))).toEqual({ i: expect.any(Number) });
    await expect(mutBorrow(lostOwner!)).rejects.toThrow(/Redis lost its data/);
    await renewalOf(store).tick();
    expect(isValid(shared)).toBe(false);
    // The other master lost nothing: its owner still works, and a real miss there is "missing".
    expect(isValid(keptOwner!)).toBe(true);
    await store.evict(keptRefs[0]!.key);
    const miss = await resolve(fromRef(keptRefs[0]!)).catch((e: unknown) => e);
    expect(miss).toBeInstanceOf(ProxyResolveMissingKeyError);
    for (const ref of refs) await store.evict(ref.key);
  }, 120_000);
});
