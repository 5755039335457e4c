/**
 * The raw chunk connection on a Redis Cluster whose slot is being migrated
 * (src/redis/raw.ts): a raw link goes to the master the client's slot map
 * names; when that master answers ASK (the object moved to the importing
 * node), the chunk is read through ioredis, which follows the ASK, and the
 * bytes are the same. On a cluster this file starts itself (slot migrations
 * are cluster-wide).
 */
import { randomBytes } from 'node:crypto';
import calculateSlot from 'cluster-key-slot';
import { Cluster } from 'ioredis';
import { RedisConnector, Store } from '../../src/index.js';
import { startRedisCluster, type ManagedRedisCluster } from '../../scripts/local-redis.js';
import { afterAll, beforeAll, deleteNamespaceKeys, describe, expect, findLeakedKeys, onTestFinished, test } from '../harness/fixtures.js';
import { SlotMover } from '../harness/slots.js';

const CHUNK = 1024;
let cluster: ManagedRedisCluster;
let slots: SlotMover;
let raw: Cluster;

beforeAll(async () => {
  cluster = await startRedisCluster({ masters: 3 });
  slots = await SlotMover.connect(cluster.nodes);
  raw = new Cluster(cluster.nodes);
}, 90_000);

afterAll(async () => {
  await raw?.quit();
  await slots?.close();
  await cluster?.stop();
});

function storeFor(namespace: string): Store {
  const store = new Store(`raw-ask-${namespace}`, new RedisConnector({ nodes: cluster.nodes, namespace }), { chunkSize: CHUNK, cacheSize: 0 });
  onTestFinished(async ({ task }) => {
    await store.close();
    const leaked = await findLeakedKeys(raw, namespace);
    await deleteNamespaceKeys(raw, namespace);
    if (task.result?.state !== 'fail') expect(leaked, 'keys left without a TTL').toEqual([]);
  });
  return store;
}

describe('the raw chunk connection during a slot migration', () => {
  test('an object moved to the importing node: its chunks are asked of the old master (ASK), read through ioredis, byte for byte', async ({ namespace }) => {
    const store = storeFor(namespace);
    const value = randomBytes(30 * CHUNK + 9);
    const key = await store.put(value);
    expect(Buffer.compare((await store.get<Buffer>(key)) as Buffer, value)).toBe(0);
    expect(store.connector.raw.stats.raw).toBeGreaterThan(30);
    expect(store.connector.raw.stats.fallbacks).toBe(0);
    const data = store.connector.dataKey(key);
    const slot = calculateSlot(data);
    await slots.begin([slot]);
    try {
      await slots.moveKeys(slot, [data]);
      const before = store.connector.raw.stats.fallbacks;
      expect(Buffer.compare((await store.get<Buffer>(key)) as Buffer, value)).toBe(0);
      const parts: Buffer[] = [];
      for await (const part of store.getStream(key)) parts.push(part as Buffer);
      expect(Buffer.compare(Buffer.concat(parts), value)).toBe(0);
      // Every chunk was refused raw (ASK) and read through ioredis.
      expect(store.connector.raw.stats.fallbacks - before).toBeGreaterThanOrEqual(2 * 31);
    } finally {
      await slots.finish([slot]);
    }
    expect(Buffer.compare((await store.get<Buffer>(key)) as Buffer, value)).toBe(0);
    await store.evict(key);
  });
});
