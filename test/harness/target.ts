/**
 * Which Redis a test run targets: one server, or a local Redis Cluster. The
 * same suites run against both (vitest projects `single` and `cluster`).
 * No vitest dependency: child processes read the target from their
 * environment with {@link targetFromEnv}.
 */
import { Cluster, Redis, type RedisOptions } from 'ioredis';
import type { ClusterNode, RedisConnectorOptions } from '../../src/index.js';

export type RedisTarget = { kind: 'single'; url: string } | { kind: 'cluster'; nodes: ClusterNode[] };

/** The environment variable that carries the target to child processes (JSON). */
export const TARGET_ENV = 'PROXYSTORE_TEST_TARGET';

export function targetEnv(target: RedisTarget): Record<string, string> {
  return { [TARGET_ENV]: JSON.stringify(target) };
}

export function targetFromEnv(): RedisTarget {
  const text = process.env[TARGET_ENV];
  if (text) return JSON.parse(text) as RedisTarget;
  const url = process.env.REDIS_URL;
  if (url) return { kind: 'single', url };
  throw new Error(`${TARGET_ENV} (or REDIS_URL) is not set`);
}

/** Connector options (minus the namespace) that reach the target. */
export function connectionOptions(target: RedisTarget): Pick<RedisConnectorOptions, 'url' | 'nodes'> {
  return target.kind === 'single' ? { url: target.url } : { nodes: target.nodes };
}

/**
 * A raw ioredis client for the target: a `Redis`, or a `Cluster` typed as one
 * (they share the command methods; MONITOR, SCRIPT FLUSH and the like only
 * make sense in single-server tests).
 */
export function rawClient(target: RedisTarget, options: RedisOptions = {}): Redis {
  if (target.kind === 'single') return new Redis(target.url, options);
  return new Cluster(target.nodes, { redisOptions: options }) as unknown as Redis;
}
