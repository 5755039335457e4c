/**
 * The cache across a Redis Cluster failover (issue 17): on a 3-master +
 * 3-replica cluster this file starts, the master of a cached key fails over
 * (gracefully, CLUSTER FAILOVER, and by SIGKILL), then another writer changes
 * the key on the new master. The caching store never serves the old copy
 * past the invalidation window (polled, at most 1 s) and serves again after.
 *
 * Why it holds: the cache tracks every master of ioredis's slot map and
 * serves only while every slot's master is tracked. A demoted master still
 * announces the writes it replicates from its successor, until ioredis moves
 * the slots (then the cache flushes and tracks the new master); a killed
 * master's tracking connection drops, which flushes the cache until the new
 * master is tracked.
 */
import { Cluster } from 'ioredis';
import calculateSlot from 'cluster-key-slot';
import { RedisConnector, Store } from '../../src/index.js';
import { serialize } from '../../src/serialize.js';
import { startRedisCluster, type ManagedRedisCluster } from '../../scripts/local-redis.js';
import { afterAll, beforeAll, describe, expect, onTestFinished, test } from '../harness/fixtures.js';

let cluster: ManagedRedisCluster;
let raw: Cluster;

beforeAll(async () => {
  cluster = await startRedisCluster({ masters: 3, replicas: 1, nodeTimeoutMs: 2000 });
  raw = new Cluster(cluster.nodes);
}, 120_000);

afterAll(async () => {
  raw?.disconnect();
  await cluster?.stop();
});

function cachingStore(namespace: string): Store {
  const s = new Store(`cf-${namespace}`, new RedisConnector({ nodes: cluster.nodes, namespace }), { cacheSize: 16, metrics: true });
  onTestFinished(async () => {
    await s.close();
  });
  return s;
}

/** The index of the master (by lowest slot) that serves `redisKey`. */
async function masterOf(redisKey: string): Promise<number> {
  const slot = calculateSlot(redisKey);
  const shards = await cluster.shards();
  const i = shards.findIndex((s) => s.slots.some(([a, b]) => slot >= a && slot <= b));
  expect(i).toBeGreaterThanOrEqual(0);
  return i;
}

async function untilHit(s: Store, key: string, timeoutMs = 15_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const before = s.metrics()?.cacheHit?.count ?? 0;
    await s.get(key);
    if ((s.metrics()?.cacheHit?.count ?? 0) > before) return;
    if (Date.now() > deadline) throw new Error('the cache never served');
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** Write `v` under `dataKey` (retrying through the failover), then read through the store until it shows: the lag. */
async function writeAndSee(s: Store, key: string, dataKey: string, v: number, firstRead = false): Promise<number> {
  const deadline = Date.now() + 20_000;
  for (;;) {
    try {
      await raw.set(dataKey, serialize({ v }));
      break;
    } catch (err) {
      if (Date.now() > deadline) throw err;
      await new Promise((r) => setTimeout(r, 100));
    }
  }
  const since = Date.now();
  for (;;) {
    const got = await s.get<{ v: number }>(key);
    const now = Date.now();
    if (got?.v === v) return now - since;
    // After a tracking connection dropped, not even the first read may be the cached copy.
    expect(firstRead, `first read after the write: ${JSON.stringify(got)} instead of v ${v}`).toBe(false);
    // A value older than the write, served past the invalidation window: stale.
    expect(now - since, `still ${JSON.stringify(got)} instead of v ${v}`).toBeLessThan(1000);
    await new Promise((r) => setTimeout(r, 2));
  }
}

describe('failover of the master of a cached key', () => {
  test('graceful (CLUSTER FAILOVER): the demoted master relays the invalidations until the new master is tracked', async ({ namespace }) => {
    const s = cachingStore(namespace);
    await s.ready();
    const key = await s.put({ v: 0 });
    const dataKey = s.connector.dataKey(key);
    await untilHit(s, key);
    const report = await cluster.failover(await masterOf(dataKey));
    expect(report.master?.port).not.toBe(report.node.port);
    const lag = await writeAndSee(s, key, dataKey, 1);
    console.log(`cache: change after a graceful failover seen in ${lag} ms`);
    await untilHit(s, key);
    expect(await writeAndSee(s, key, dataKey, 2)).toBeLessThan(1000);
    await s.evict(key);
  }, 120_000);

  test('a master killed: its tracking connection drops, the cache flushes and serves again once the topology is tracked', async ({ namespace }) => {
    const s = cachingStore(namespace);
    await s.ready();
    const key = await s.put({ v: 0 });
    const dataKey = s.connector.dataKey(key);
    await untilHit(s, key);
    const hitsBefore = s.metrics()?.cacheHit?.count ?? 0;
    const report = await cluster.killMaster(await masterOf(dataKey));
    const lag = await writeAndSee(s, key, dataKey, 1, true);
    console.log(`cache: change after a master was killed seen in ${lag} ms (promotion after ${report.promotedAfterMs} ms)`);
    await untilHit(s, key, 30_000);
    expect(s.metrics()?.cacheHit?.count).toBeGreaterThan(hitsBefore);
    expect(await writeAndSee(s, key, dataKey, 2)).toBeLessThan(1000);
    await s.evict(key);
    await cluster.restartNode();
  }, 120_000);
});
