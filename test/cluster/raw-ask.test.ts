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
import type { ManagedRedisCluster } from '../../scripts/local-redis.js';
import { deleteNamespaceKeys, describe, expect, findLeakedKeys, namespaceKeys, onTestFinished, test } from '../harness/fixtures.js';
import { SlotMover, withMigratingCluster } from '../harness/slots.js';
import { CHUNK, slowSource } from '../chunks/util.js';

let cluster: ManagedRedisCluster;
let slots: SlotMover;
let raw: Cluster;

withMigratingCluster((env) => ({ cluster, slots, raw } = env));

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

  test('a putStream whose slot migrates while it writes: the chunks before go raw, those after are refused (ASK, then MOVED) and go through ioredis, and the value arrives whole', async ({ namespace }) => {
    const store = storeFor(namespace);
    const value = randomBytes(60 * CHUNK + 5);
    // A slow producer: one chunk every 20 ms, so the migration happens mid-stream.
    const { stream: source, at } = slowSource(value, 20);
    const put = store.putStream(source);
    // Wait until its staging hash exists (its name says the object's slot) and some chunks went raw.
    let stage: string | undefined;
    for (let i = 0; i < 200 && (stage === undefined || store.connector.raw.stats.raw < 5); i++) {
      await new Promise((r) => setTimeout(r, 10));
      stage = (await namespaceKeys(raw, namespace)).find((k) => k.includes(':stage:'));
    }
    expect(stage, 'the staging hash of the stream').toBeDefined();
    const slot = calculateSlot(stage as string);
    const rawBefore = store.connector.raw.stats.raw;
    expect(at(), 'the producer is still writing').toBeLessThan(value.length);
    await slots.begin([slot]);
    try {
      expect(await slots.moveKeys(slot)).toBeGreaterThanOrEqual(1);
      await new Promise((r) => setTimeout(r, 200));
    } finally {
      await slots.finish([slot]);
    }
    const key = await put;
    expect(rawBefore).toBeGreaterThanOrEqual(5);
    expect(store.connector.raw.stats.fallbacks, 'chunks refused raw during the migration').toBeGreaterThan(0);
    expect(Buffer.compare((await store.get<Buffer>(key)) as Buffer, value)).toBe(0);
    // Nothing staged is left.
    expect((await namespaceKeys(raw, namespace)).filter((k) => k.includes(':stage:'))).toEqual([]);
    await store.evict(key);
  });
});
