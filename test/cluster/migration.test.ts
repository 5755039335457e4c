/**
 * Slot migrations (issue 12, points 1 and 2), made to happen deterministically: on a 3-master
 * Redis Cluster this file starts itself, slots are put in migration by hand (CLUSTER SETSLOT
 * IMPORTING/MIGRATING, MIGRATE of chosen keys: test/harness/slots.ts) and held there while the
 * library works on them, then finished. Migrations are held longer than ioredis's own
 * redirections last (16 x 100 ms), as a slot holding many keys is on a real reshard.
 *
 * What must hold: batches follow MOVED/ASK/TRYAGAIN and write or read each key once, on the
 * right node; a batch that cannot finish before its command timeout removes what it wrote and
 * fails with a ClusterReconfiguringError; scripts on a slot in migration are sent again until
 * it ends, and fail typed (changing nothing) when it outlasts the command timeout; nothing is
 * left without a TTL.
 */
import { Cluster } from 'ioredis';
import calculateSlot from 'cluster-key-slot';
import {
  ClusterReconfiguringError,
  ContextLifetime,
  LeaseLifetime,
  RedisConnector,
  Store,
  fromRef,
  resolve,
  toRef,
  ProxyResolveMissingKeyError,
} from '../../src/index.js';
import type { ManagedRedisCluster } from '../../scripts/local-redis.js';
import { deleteNamespaceKeys, describe, expect, findLeakedKeys, namespaceKeys, onTestFinished, test } from '../harness/fixtures.js';
import { SlotMover, withMigratingCluster, type MasterNode } from '../harness/slots.js';
import { lifetimeKeys } from '../lifetimes/util.js';

let cluster: ManagedRedisCluster;
let slots: SlotMover;
let raw: Cluster;

withMigratingCluster((env) => ({ cluster, slots, raw } = env));

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/** A store on this file's cluster, closed and leak-checked when the test ends. */
function storeFor(namespace: string, commandTimeoutMs?: number): Store {
  const connector = new RedisConnector({ nodes: cluster.nodes, namespace, ...(commandTimeoutMs ? { commandTimeoutMs } : {}) });
  const store = new Store(`migration-${namespace}`, connector, { register: true });
  onTestFinished(async ({ task }) => {
    await store.close();
    const leaked = await findLeakedKeys(raw, namespace);
    await deleteNamespaceKeys(raw, namespace);
    if (task.result?.state !== 'fail') expect(leaked, 'keys left without a TTL').toEqual([]);
  });
  return store;
}

function slotOf(store: Store, key: string): number {
  return calculateSlot(store.connector.dataKey(key));
}

function range(n: number, label: string): string[] {
  return Array.from({ length: n }, (_, i) => `${label} ${i}`);
}

async function decodeAll(store: Store, keys: string[]): Promise<unknown[]> {
  const bytes = await store.connector.getBatch(keys);
  return bytes.map((b, i) => (b === undefined ? undefined : store.decode(b, keys[i] as string, undefined)));
}

/** PEXPIRETIME of a Redis key, asked of the node that holds it now (the migration is over). */
async function expiryOf(key: string): Promise<number> {
  return raw.pexpiretime(key);
}

describe('batches during a slot migration', () => {
  test('putBatch and getBatch follow ASK: keys new during the migration go to the importing node, every key reads back, half-moved slots included', async ({
    namespace,
  }) => {
    const store = storeFor(namespace);
    const before = await store.putBatch(range(200, 'before'));
    const { slots: moving } = await slots.someSlots(2000);
    const inMoving = (keys: string[]) => keys.filter((k) => moving.includes(slotOf(store, k)));
    const { to } = await slots.begin(moving);
    const during: string[] = [];
    try {
      // Half of the keys already in those slots move now, half stay on the migrating node:
      // a read pipeline to it gets some values and some ASKs.
      const moved = inMoving(before).filter((_, i) => i % 2 === 0);
      expect(moved.length).toBeGreaterThan(2);
      for (const k of moved) await slots.moveKeys(slotOf(store, k), [store.connector.dataKey(k)]);
      during.push(...(await store.putBatch(range(300, 'during'))));
      const asked = inMoving(during);
      expect(asked.length).toBeGreaterThan(4);
      // Written on the importing node (ASKING), as Redis asks.
      for (const k of asked.slice(0, 5)) {
        const [[, exists] = []] = (await to.redis.pipeline().asking().exists(store.connector.dataKey(k)).exec())?.slice(1) ?? [];
        expect(exists).toBe(1);
      }
      expect(await decodeAll(store, [...before, ...during])).toEqual([...range(200, 'before'), ...range(300, 'during')]);
    } finally {
      await slots.finish(moving);
    }
    expect(await decodeAll(store, [...before, ...during])).toEqual([...range(200, 'before'), ...range(300, 'during')]);
    for (const k of [...before, ...during]) await store.evict(k);
  });

  test('a putBatch the cluster keeps turning away fails with ClusterReconfiguringError at its command timeout, and removes what it wrote', async ({
    namespace,
  }) => {
    const store = storeFor(namespace, 1500);
    const { slots: moving } = await slots.someSlots(3000);
    // MIGRATING without IMPORTING: the source sends new keys to the target, which sends them back.
    await slots.begin(moving, undefined, { importing: false });
    try {
      const err = (await store.putBatch(range(300, 'v')).catch((e: unknown) => e)) as ClusterReconfiguringError;
      expect(err).toBeInstanceOf(ClusterReconfiguringError);
      expect(err.retryable).toBe(true);
      expect(err.mayHaveRun).toBe(false);
      expect(err.writtenKeys).toBeUndefined();
      expect(err.message).toMatch(/Redis Cluster is reconfiguring/);
      expect(err.message).toMatch(/nothing of it is left/);
      expect(err.message).not.toMatch(/All keys in the pipeline/);
      // The part that went through on other slots was removed.
      expect(await namespaceKeys(raw, namespace)).toEqual([]);
    } finally {
      await slots.abort(moving);
    }
  });

  test('a put to a slot the cluster keeps turning away fails typed and leaves nothing', async ({ namespace }) => {
    const store = storeFor(namespace, 1000);
    const { slots: moving } = await slots.someSlots(16384);
    await slots.begin(moving, undefined, { importing: false });
    try {
      // A third of the slots: a few puts are enough to meet one of them.
      let failed: unknown;
      for (let i = 0; i < 20 && failed === undefined; i++) await store.put(`v${i}`).then((k) => store.evict(k).catch(() => undefined), (e: unknown) => (failed = e));
      expect(failed).toBeInstanceOf(ClusterReconfiguringError);
      expect((failed as ClusterReconfiguringError).mayHaveRun).toBe(false);
    } finally {
      await slots.abort(moving);
    }
    expect(await namespaceKeys(raw, namespace)).toEqual([]);
  });
});

describe('scripts during a slot migration', () => {
  /** A lease with `n` own members and one foreign member (so that all its declared keys exist on the source). */
  async function leaseWithMembers(store: Store, n: number): Promise<{ lease: LeaseLifetime; members: string[]; foreign: string }> {
    const lease = await new LeaseLifetime(store, { expiry: 600 }).waitUntilReady();
    const members = await store.putBatch(range(n, 'member'), { lifetime: lease });
    const foreign = await store.put('foreign');
    await lease.addKey(foreign);
    return { lease, members, foreign };
  }

  async function startMigration(store: Store, lifetimeId: string, members: string[]): Promise<{ slot: number; from: MasterNode }> {
    const slot = calculateSlot(lifetimeKeys(store, lifetimeId).meta);
    const { from } = await slots.begin([slot]);
    // Half the members' data keys move; the meta and the sets stay on the source.
    await slots.moveKeys(
      slot,
      members.filter((_, i) => i % 2 === 1).map((k) => store.connector.dataKey(k)),
    );
    return { slot, from };
  }

  test('extend during a migration that outlasts the command timeout fails typed and changes nothing; once over, extend(600) adds exactly 600 s', async ({
    namespace,
  }) => {
    const store = storeFor(namespace, 1500);
    const { lease, members } = await leaseWithMembers(store, 20);
    const k = lifetimeKeys(store, lease.id);
    const end = Number(await raw.hget(k.meta, 'expiresAt'));
    const { slot, from } = await startMigration(store, lease.id, members);
    try {
      const err = (await lease.extend(600).catch((e: unknown) => e)) as ClusterReconfiguringError;
      expect(err).toBeInstanceOf(ClusterReconfiguringError);
      expect(err.mayHaveRun).toBe(false);
      expect(err.message).toMatch(/lifetimeExtend/);
      // Nothing moved: not the lease end, not the meta's expiry.
      expect(Number(await from.redis.hget(k.meta, 'expiresAt'))).toBe(end);
      expect(await from.redis.pexpiretime(k.meta)).toBe(end);
    } finally {
      await slots.finish([slot]);
    }
    // Unchanged, not 600 s later (MIGRATE carries a TTL as milliseconds left: a moved key's drifts by the transfer time).
    for (const m of members) expect(Math.abs((await expiryOf(store.connector.dataKey(m))) - end)).toBeLessThan(5000);
    await lease.extend(600);
    expect(Number(await raw.hget(k.meta, 'expiresAt'))).toBe(end + 600_000);
    for (const m of members) expect(await expiryOf(store.connector.dataKey(m))).toBe(end + 600_000);
    await lease.close();
  });

  test('extend(60) during a migration that ends meanwhile waits for it, and is applied once', async ({ namespace }) => {
    const store = storeFor(namespace);
    const { lease, members, foreign } = await leaseWithMembers(store, 20);
    const k = lifetimeKeys(store, lease.id);
    const end = Number(await raw.hget(k.meta, 'expiresAt'));
    const { slot } = await startMigration(store, lease.id, members);
    let extended = false;
    let waited = false;
    const extending = lease.extend(60).then(() => (extended = true));
    // Longer than ioredis's own redirections (16 x 100 ms).
    await sleep(2000);
    waited = !extended;
    await slots.finish([slot]);
    await extending;
    expect(waited).toBe(true);
    expect(Number(await raw.hget(k.meta, 'expiresAt'))).toBe(end + 60_000);
    for (const m of [...members, foreign]) expect(await expiryOf(store.connector.dataKey(m))).toBe(end + 60_000);
    await lease.close();
  });

  /** A context lifetime whose four keys all exist (a foreign key parked in `evicting`, as a closer that died leaves it). */
  async function contextWithMembers(store: Store, n: number): Promise<{ lifetime: ContextLifetime; members: string[] }> {
    const lifetime = await new ContextLifetime(store).waitUntilReady();
    const members = await store.putBatch(range(n, 'member'), { lifetime });
    const foreign = await store.put('foreign');
    await lifetime.addKey(foreign);
    await raw.sadd(lifetimeKeys(store, lifetime.id).evicting, store.connector.dataKey(await store.put('parked')));
    return { lifetime, members };
  }

  test('close during a migration waits for it, then evicts every member once', async ({ namespace }) => {
    const store = storeFor(namespace);
    const { lifetime, members } = await contextWithMembers(store, 20);
    const { slot } = await startMigration(store, lifetime.id, members);
    let closed = false;
    const closing = lifetime.close().then(() => (closed = true));
    await sleep(2000);
    const waited = !closed;
    await slots.finish([slot]);
    await closing;
    expect(waited).toBe(true);
    expect(await lifetime.done()).toBe(true);
    expect(await store.connector.getBatch(members)).toEqual(members.map(() => undefined));
  });

  test('close during a migration that outlasts the command timeout fails typed and changes nothing', async ({ namespace }) => {
    const store = storeFor(namespace, 1500);
    const { lifetime, members } = await contextWithMembers(store, 20);
    const k = lifetimeKeys(store, lifetime.id);
    const { slot, from } = await startMigration(store, lifetime.id, members);
    try {
      const err = (await lifetime.close().catch((e: unknown) => e)) as ClusterReconfiguringError;
      expect(err).toBeInstanceOf(ClusterReconfiguringError);
      expect(err.mayHaveRun).toBe(false);
      expect(await from.redis.hget(k.meta, 'state')).toBe('open');
      expect(await from.redis.scard(k.members)).toBe(20);
    } finally {
      await slots.finish([slot]);
    }
    expect((await store.connector.getBatch(members)).every((b) => b !== undefined)).toBe(true);
    await lifetime.close();
    expect(await store.connector.getBatch(members)).toEqual(members.map(() => undefined));
  });

  test('a lifetime put during its slot migration waits for it and writes each member once', async ({ namespace }) => {
    const store = storeFor(namespace);
    const lifetime = await new ContextLifetime(store).waitUntilReady();
    const first = await store.put('first', { lifetime });
    const slot = calculateSlot(lifetimeKeys(store, lifetime.id).meta);
    await slots.begin([slot]);
    let put = false;
    const putting = store.putBatch(range(5, 'late'), { lifetime }).then((keys) => ((put = true), keys));
    await sleep(2000);
    const waited = !put;
    await slots.finish([slot]);
    const late = await putting;
    expect(waited).toBe(true);
    expect(await raw.scard(lifetimeKeys(store, lifetime.id).members)).toBe(6);
    expect(await decodeAll(store, [first, ...late])).toEqual(['first', ...range(5, 'late')]);
    await lifetime.close();
  });

  test('a consume during its slot migration waits for it and consumes once', async ({ namespace }) => {
    const store = storeFor(namespace);
    const proxy = await store.proxy({ payload: 'once' }, { evict: true });
    const ref = toRef(proxy);
    const slot = slotOf(store, ref.key);
    await slots.begin([slot]);
    await slots.moveKeys(slot, [store.connector.dataKey(ref.key)]);
    let consumed = false;
    const consuming = resolve(fromRef<{ payload: string }>(ref)).then((v) => ((consumed = true), v));
    await sleep(2000);
    const waited = !consumed;
    await slots.finish([slot]);
    expect(await consuming).toEqual({ payload: 'once' });
    expect(waited).toBe(true);
    await expect(resolve(fromRef(ref))).rejects.toBeInstanceOf(ProxyResolveMissingKeyError);
  });

  test('foreign members on a migrating master: addKey, extend and close of a lifetime elsewhere follow ASK', async ({ namespace }) => {
    const store = storeFor(namespace);
    const lease = await new LeaseLifetime(store, { expiry: 600 }).waitUntilReady();
    const k = lifetimeKeys(store, lease.id);
    const home = await slots.ownerOf(calculateSlot(k.meta));
    const foreign = await store.putBatch(range(200, 'foreign'));
    const { slots: moving } = await slots.someSlots(3000, home);
    const inMoving = foreign.filter((f) => moving.includes(slotOf(store, f)));
    expect(inMoving.length).toBeGreaterThan(4);
    await slots.begin(moving, slots.other((await slots.ownerOf(moving[0] as number)), home));
    try {
      for (const f of inMoving.filter((_, i) => i % 2 === 0)) await slots.moveKeys(slotOf(store, f), [store.connector.dataKey(f)]);
      await lease.addKey(...foreign);
      await lease.extend(60);
    } finally {
      await slots.finish(moving);
    }
    const end = Number(await raw.hget(k.meta, 'expiresAt'));
    // MIGRATE carries a key's TTL as a relative time (DUMP/RESTORE), so a key that
    // `finish` moved after its expiry was set may land a millisecond off.
    for (const f of foreign) expect(Math.abs((await expiryOf(store.connector.dataKey(f))) - end)).toBeLessThanOrEqual(2);
    await slots.begin(moving.slice(0, 1000));
    try {
      await lease.close();
    } finally {
      await slots.finish(moving.slice(0, 1000));
    }
    expect(await store.connector.getBatch(foreign)).toEqual(foreign.map(() => undefined));
  });
});
