/**
 * Slot migrations made by hand, step by step, on a Redis Cluster a test
 * started itself (`startRedisCluster`), so that a test can hold a slot in the
 * middle of a migration for as long as it likes:
 *
 *   const slots = await SlotMover.connect(cluster.nodes);
 *   const { from, to } = await slots.begin([slot]);     // IMPORTING / MIGRATING
 *   await slots.moveKeys(slot, [someKey]);              // MIGRATE ... KEYS
 *   await slots.finish([slot]);                         // the rest, then SETSLOT NODE everywhere
 *
 * Between `begin` and `finish`, the source answers ASK for keys it no longer
 * has (and for new ones), the target serves them to ASKING clients, and
 * multi-key commands (scripts) on keys split between the two get TRYAGAIN, as
 * in a real reshard (`redis-cli --cluster reshard` does the same steps).
 */
import { Cluster, Redis } from 'ioredis';
import { afterAll, beforeAll } from 'vitest';
import { startRedisCluster, type ManagedRedisCluster } from '../../scripts/local-redis.js';

export interface MasterNode {
  redis: Redis;
  id: string;
  host: string;
  port: number;
}

export class SlotMover {
  private constructor(readonly masters: MasterNode[]) {}

  static async connect(nodes: readonly { host: string; port: number }[]): Promise<SlotMover> {
    const masters = await Promise.all(
      nodes.map(async (n) => {
        const redis = new Redis(n.port, n.host, { lazyConnect: true, maxRetriesPerRequest: 1 });
        await redis.connect();
        const id = String(await redis.call('CLUSTER', 'MYID'));
        return { redis, id, host: n.host, port: n.port };
      }),
    );
    return new SlotMover(masters);
  }

  /** The slot of a key (as the server computes it). */
  async slotOf(key: string): Promise<number> {
    return Number(await (this.masters[0] as MasterNode).redis.call('CLUSTER', 'KEYSLOT', key));
  }

  /** The master serving each slot, as the first node sees it. */
  async owners(): Promise<Map<number, MasterNode>> {
    const reply = (await (this.masters[0] as MasterNode).redis.call('CLUSTER', 'SLOTS')) as [number, number, [string, number, string]][];
    const out = new Map<number, MasterNode>();
    for (const [first, last, [, port]] of reply) {
      const node = this.masters.find((m) => m.port === Number(port));
      if (!node) throw new Error(`no master on port ${port}`);
      for (let s = first; s <= last; s++) out.set(s, node);
    }
    return out;
  }

  /** The slots a master serves. */
  async slotsOf(master: MasterNode): Promise<number[]> {
    const owners = await this.owners();
    return [...owners].filter(([, m]) => m === master).map(([s]) => s);
  }

  /** Another master than `node` (and than `not`). */
  other(node: MasterNode, not?: MasterNode): MasterNode {
    return this.masters.find((m) => m !== node && m !== not) as MasterNode;
  }

  /** The master serving a slot now. */
  async ownerOf(slot: number): Promise<MasterNode> {
    return (await this.owners()).get(slot) as MasterNode;
  }

  /** `count` slots of the master that serves the most (not `avoid`), to migrate. */
  async someSlots(count: number, avoid?: MasterNode): Promise<{ master: MasterNode; slots: number[] }> {
    const owners = await this.owners();
    const by = new Map<MasterNode, number[]>();
    for (const [s, m] of owners) if (m !== avoid) by.set(m, [...(by.get(m) ?? []), s]);
    const [master, all] = [...by].sort((a, b) => b[1].length - a[1].length)[0] as [MasterNode, number[]];
    return { master, slots: all.slice(0, count) };
  }

  /**
   * Start migrating `slots` (all served by one master) to `to` (another
   * master by default): IMPORTING on the target, then MIGRATING on the source.
   */
  async begin(slots: readonly number[], to?: MasterNode, options: { importing?: boolean } = {}): Promise<{ from: MasterNode; to: MasterNode }> {
    const owners = await this.owners();
    const from = owners.get(slots[0] as number) as MasterNode;
    for (const s of slots) if (owners.get(s) !== from) throw new Error(`slot ${s} is not on ${from.port}`);
    const target = to ?? this.other(from);
    if (options.importing ?? true) await this.each(target, slots, (p, s) => p.call('CLUSTER', 'SETSLOT', s, 'IMPORTING', from.id));
    await this.each(from, slots, (p, s) => p.call('CLUSTER', 'SETSLOT', s, 'MIGRATING', target.id));
    this.migrations.set(slots, { from, to: target });
    return { from, to: target };
  }

  private readonly migrations = new Map<readonly number[], { from: MasterNode; to: MasterNode }>();

  private migrationOf(slot: number): { from: MasterNode; to: MasterNode } {
    for (const [slots, m] of this.migrations) if (slots.includes(slot)) return m;
    throw new Error(`slot ${slot} is not migrating`);
  }

  /** Move these keys of `slot` (or all it still has on the source) to the target. */
  async moveKeys(slot: number, keys?: readonly string[]): Promise<number> {
    const { from, to } = this.migrationOf(slot);
    let moved = 0;
    for (;;) {
      const batch = keys ? [...keys] : ((await from.redis.call('CLUSTER', 'GETKEYSINSLOT', slot, 1000)) as string[]);
      if (batch.length > 0) {
        await from.redis.call('MIGRATE', to.host, to.port, '', 0, 10_000, 'REPLACE', 'KEYS', ...batch);
        moved += batch.length;
      }
      if (keys || batch.length < 1000) return moved;
    }
  }

  /** Move every key left on the source of each slot, then give the slots to the target on every master. */
  async finish(slots: readonly number[]): Promise<void> {
    const { from, to } = this.migrationOf(slots[0] as number);
    const counts = from.redis.pipeline();
    for (const s of slots) counts.call('CLUSTER', 'COUNTKEYSINSLOT', s);
    const left = (await counts.exec()) ?? [];
    for (let i = 0; i < slots.length; i++) {
      const [err, n] = left[i] ?? [new Error('no reply'), 0];
      if (err) throw err;
      if (Number(n) > 0) await this.moveKeys(slots[i] as number);
    }
    // The target first, then the source, then the others (as redis-cli does).
    for (const node of [to, from, ...this.masters.filter((m) => m !== to && m !== from)]) {
      await this.each(node, slots, (p, s) => p.call('CLUSTER', 'SETSLOT', s, 'NODE', to.id));
    }
    for (const [key, m] of this.migrations) if (m.from === from && key.some((s) => slots.includes(s))) this.migrations.delete(key);
  }

  /** Undo `begin` before any key moved (SETSLOT STABLE on both nodes). */
  async abort(slots: readonly number[]): Promise<void> {
    const { from, to } = this.migrationOf(slots[0] as number);
    for (const node of [from, to]) await this.each(node, slots, (p, s) => p.call('CLUSTER', 'SETSLOT', s, 'STABLE'));
    for (const [key] of this.migrations) if (key.some((s) => slots.includes(s))) this.migrations.delete(key);
  }

  private async each(node: MasterNode, slots: readonly number[], queue: (p: ReturnType<Redis['pipeline']>, slot: number) => unknown): Promise<void> {
    for (let i = 0; i < slots.length; i += 2000) {
      const p = node.redis.pipeline();
      for (const s of slots.slice(i, i + 2000)) queue(p, s);
      for (const [err] of (await p.exec()) ?? []) if (err) throw err;
    }
  }

  async close(): Promise<void> {
    await Promise.all(this.masters.map((m) => m.redis.quit().catch(() => m.redis.disconnect())));
  }
}

/** What {@link withMigratingCluster} hands a test file. */
export interface MigratingCluster {
  cluster: ManagedRedisCluster;
  slots: SlotMover;
  /** A Cluster client of the test's own (checks, leak scans). */
  raw: Cluster;
}

/**
 * A 3-master Redis Cluster this test file starts itself (beforeAll) with a
 * {@link SlotMover} and a client, all stopped afterwards (afterAll); `set`
 * receives them once started.
 */
export function withMigratingCluster(set: (env: MigratingCluster) => void): void {
  let env: MigratingCluster | undefined;
  beforeAll(async () => {
    const cluster = await startRedisCluster({ masters: 3 });
    env = { cluster, slots: await SlotMover.connect(cluster.nodes), raw: new Cluster(cluster.nodes) };
    set(env);
  }, 90_000);
  afterAll(async () => {
    await env?.raw.quit();
    await env?.slots.close();
    await env?.cluster.stop();
  });
}
