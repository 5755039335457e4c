/**
 * Ownership on a real Redis Cluster (3 masters started for this file): every
 * script touches keys of one hash tag, clone's COPY stays in its source's
 * slot, and the heartbeat renews handles spread over all nodes.
 */
import { Cluster } from 'ioredis';
import { startRedisCluster, type LocalRedisCluster } from '../scripts/local-redis.js';
import {
  MutableBorrowError,
  RedisConnector,
  Store,
  borrow,
  clone,
  drop,
  fromRef,
  getKey,
  mutBorrow,
  release,
  resolve,
  toRef,
  update,
  type RefMutProxy,
} from '../src/index.js';
import { afterAll, beforeAll, describe, expect, test } from './harness/fixtures.js';

let cluster: LocalRedisCluster;
let client: Cluster;

beforeAll(async () => {
  cluster = await startRedisCluster();
  client = new Cluster(cluster.nodes);
}, 60_000);

afterAll(async () => {
  client?.disconnect();
  await cluster?.stop();
});

async function clusterKeys(namespace: string): Promise<string[]> {
  return (await Promise.all(client.nodes('master').map((n) => n.keys(`${namespace}:*`)))).flat();
}

describe('on a Redis Cluster', () => {
  test('owners on every node are borrowed, renewed past their lease, cloned, updated and dropped', { timeout: 60_000 }, async ({
    namespace,
  }) => {
    const store = new Store(`cluster-${namespace}`, new RedisConnector({ client, namespace }), { register: true, leaseTtl: 1 });
    try {
      const owners = await Promise.all(Array.from({ length: 9 }, (_, i) => store.ownedProxy({ i })));
      const shared = await Promise.all(owners.map((o) => borrow(o)));
      // The objects are spread over the masters.
      const perNode = await Promise.all(client.nodes('master').map((n) => n.keys(`${namespace}:*`)));
      expect(perNode.filter((keys) => keys.length > 0).length).toBeGreaterThan(1);
      // Past two lease lengths, the heartbeat has kept every handle alive.
      await new Promise((r) => setTimeout(r, 2_500));
      for (const b of shared) await release(b);

      const copy = await clone(owners[0]!);
      expect(await resolve(fromRef(toRef(await borrow(copy))))).toEqual({ i: 0 });
      const writer = fromRef<{ i: number }>(toRef(await mutBorrow(owners[1]!))) as RefMutProxy<{ i: number }>;
      await expect(borrow(owners[1]!)).rejects.toThrow(MutableBorrowError);
      (await resolve(writer)).i = 100;
      await update(writer);
      await release(writer);
      expect(await store.get(getKey(owners[1]!))).toEqual({ i: 100 });
      for (const o of owners) await drop(o);
    } finally {
      await store.close({ closeConnector: false });
    }
    // The borrow of the clone still held at close was released, the clone dropped: nothing is left.
    expect(await clusterKeys(namespace)).toEqual([]);
  });
});
