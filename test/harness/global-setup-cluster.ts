/**
 * Vitest global setup of the `cluster` project: a local 3-master Redis
 * Cluster from redis-server binaries, stopped by pid at the end.
 */
import type { TestProject } from 'vitest/node';
import { startRedisCluster } from '../../scripts/local-redis.js';

export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  const cluster = await startRedisCluster({ masters: 3 });
  const nodes = cluster.nodes.map((n) => ({ host: n.host, port: n.port }));
  console.log(`[proxystore-redis] cluster tests use a Redis Cluster at ${nodes.map((n) => `${n.host}:${n.port}`).join(', ')}`);
  project.provide('redisTarget', { kind: 'cluster', nodes });
  // Some harness pieces want a URL; in the cluster project it names one node only.
  project.provide('redisUrl', `redis://${nodes[0]!.host}:${nodes[0]!.port}`);
  return async () => {
    await cluster.stop();
  };
}
