/**
 * The fault helpers of scripts/local-redis.ts themselves, on a 3+3 cluster with data and no
 * workload: each does what it says, waits for the cluster to settle, and loses no key that was
 * replicated before the fault (WAIT). The scenarios build on these.
 */
import { createServer, type Socket } from 'node:net';
import { Cluster } from 'ioredis';
import { describe, expect, test } from 'vitest';
import type { ManagedRedisCluster } from '../../scripts/local-redis.js';
import { chaosConfig } from './harness/config.js';
import { useChaosCluster } from './harness/suite.js';

const config = chaosConfig();
const KEYS = Array.from({ length: 300 }, (_, i) => `chaos-helper-${i}`);

async function readAll(client: Cluster): Promise<number> {
  const values = await Promise.all(KEYS.map((k) => client.get(k)));
  return values.filter((v, i) => v === KEYS[i]).length;
}

/** Masters, each with one live replica, serving all 16384 slots. */
async function expectThreePlusThree(cluster: ManagedRedisCluster): Promise<void> {
  const shards = await cluster.shards();
  expect(shards).toHaveLength(3);
  for (const s of shards) expect(s.replicas.filter((r) => !r.killed && !r.frozen)).toHaveLength(1);
  expect(shards.reduce((n, s) => n + s.slots.reduce((m, [a, b]) => m + b - a + 1, 0), 0)).toBe(16384);
}

describe('chaos cluster helpers', () => {
  const cluster = useChaosCluster(config);

  test('kill, restart, freeze, failover and reshard keep 3+3 and every replicated key', { timeout: 240_000 }, async () => {
    const c = cluster();
    await expectThreePlusThree(c);
    expect(c.servers()).toHaveLength(6);
    const client = new Cluster(c.nodes, { redisOptions: { commandTimeout: 5_000 } });
    client.on('error', () => {});
    try {
      for (const k of KEYS) await client.set(k, k);
      // Every master's writes are on its replica before any fault.
      await Promise.all(client.nodes('master').map((n) => n.call('WAIT', '1', '5000')));

      const moved = await c.reshard(0, 1, 200, { pauseMs: 1, batchKeys: 7 });
      const after = await c.shards();
      const target = after.find((s) => s.master.id === moved.target.id)!;
      expect(target.slots.some(([a, b]) => a <= moved.slots[0]! && moved.slots[0]! <= b)).toBe(true);
      expect(moved.windows).toHaveLength(200);
      expect(moved.windows.every((w) => w.end >= w.start)).toBe(true);
      expect(await readAll(client)).toBe(KEYS.length);

      const graceful = await c.failover(1);
      expect(graceful.demoted).toBe(true);
      expect(graceful.master?.port).not.toBe(graceful.node.port);
      await expectThreePlusThree(c);
      expect(await readAll(client)).toBe(KEYS.length);

      const killed = await c.killMaster(2);
      expect(c.servers().find((s) => s.port === killed.node.port)?.killed).toBe(true);
      expect(killed.promotedAfterMs).toBeGreaterThan(0);
      expect(await readAll(client)).toBe(KEYS.length);
      const restarted = await c.restartNode();
      expect(restarted.node.pid).not.toBe(killed.node.pid);
      await expectThreePlusThree(c);

      const frozen = await c.freezeMaster(0, config.freezeMs);
      expect(frozen.frozenMs).toBeGreaterThanOrEqual(config.freezeMs);
      expect(frozen.demoted).toBe(true);
      await expectThreePlusThree(c);
      expect(await readAll(client)).toBe(KEYS.length);

      // A killed node whose port was taken meanwhile comes back as a fresh node on another port.
      const again = await c.killMaster(1);
      // Accepts and holds connections (the test's client keeps trying the old address).
      const held = new Set<Socket>();
      const squatter = createServer((socket) => {
        held.add(socket);
        socket.on('error', () => {});
      });
      await new Promise<void>((res) => squatter.listen(again.node.port, '127.0.0.1', () => res()));
      try {
        const rejoined = await c.restartNode();
        expect(rejoined.node.port).not.toBe(again.node.port);
        expect(c.nodes.map((n) => n.port)).toContain(rejoined.node.port);
        await expectThreePlusThree(c);
        expect(await readAll(client)).toBe(KEYS.length);
      } finally {
        const closed = new Promise<void>((res) => squatter.close(() => res()));
        for (const socket of held) socket.destroy();
        await closed;
      }

      await expect(c.restartNode()).rejects.toThrow(/0 nodes are killed/);
      await expect(c.killMaster(3)).rejects.toThrow(/numbered 0-2/);
    } finally {
      client.disconnect();
    }
  });
});
