/**
 * A future wait on a Redis Cluster whose slot moves while the wait blocks
 * (on a 3-master cluster this file starts itself): the blocked XREAD is
 * answered with a redirection, the pool follows it to the new master, and
 * the set that comes after wakes the wait there.
 */
import { Cluster } from 'ioredis';
import calculateSlot from 'cluster-key-slot';
import { Future, RedisConnector, Store, toRef } from '../../src/index.js';
import { BLOCKING_CONNECTION_NAME } from '../../src/future/pool.js';
import type { ManagedRedisCluster } from '../../scripts/local-redis.js';
import { deleteNamespaceKeys, describe, expect, findLeakedKeys, newNamespace, onTestFinished, test } from '../harness/fixtures.js';
import { SlotMover, withMigratingCluster, type MasterNode } from '../harness/slots.js';

let cluster: ManagedRedisCluster;
let slots: SlotMover;
let raw: Cluster;

withMigratingCluster((env) => ({ cluster, slots, raw } = env));

function storeOn(): Store {
  const namespace = newNamespace();
  const store = new Store(`moved-${namespace}`, new RedisConnector({ nodes: cluster.nodes, namespace }), { register: true });
  onTestFinished(async ({ task }) => {
    await store.close();
    const leaked = await findLeakedKeys(raw, namespace);
    await deleteNamespaceKeys(raw, namespace);
    if (task.result?.state !== 'fail') expect(leaked, 'keys left without a TTL').toEqual([]);
  });
  return store;
}

/** Whether `master` holds a blocked wait of this library. */
async function blockedOn(master: MasterNode): Promise<boolean> {
  const list = (await master.redis.client('LIST')) as string;
  return list.split('\n').some((l) => l.includes(`name=${BLOCKING_CONNECTION_NAME} `) && / flags=\S*b/.test(l));
}

async function until(check: () => Promise<boolean>, what: string): Promise<void> {
  const end = Date.now() + 20_000;
  while (!(await check())) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

describe('futures while the cluster reshards', () => {
  test("a wait blocked on a slot that moves follows it to its new master and wakes with the value", { timeout: 60_000 }, async () => {
    const store = storeOn();
    const future = await store.future<string>({ ttl: 60 });
    const slot = calculateSlot(store.connector.keys.object('sig', future.key));
    const from = await slots.ownerOf(slot);
    const waiting = future.result({ timeout: 40 });
    await until(() => blockedOn(from), 'the wait to block on the slot owner');
    const { to } = await slots.begin([slot]);
    await slots.finish([slot]);
    await until(() => blockedOn(to), 'the wait to block on the new owner');
    expect(await blockedOn(from)).toBe(false);
    await Future.fromRef<string>(toRef(future)).setResult('moved');
    expect(await waiting).toBe('moved');
  });
});
