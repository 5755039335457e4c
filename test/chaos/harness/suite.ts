/**
 * What every chaos test file shares: its own 3+3 cluster, and the assertions that hold today.
 *
 * Asserted today: the harness worked (every fault happened and the cluster settled, every
 * workload made progress before and after each fault, every ref was raced) and nothing hung
 * forever (every call settled). The violations themselves (double consumes, overlapping
 * borrows, lost writes, leaked keys, raw errors) are measured and printed, and asserted to be 0
 * only with CHAOS_EXPECT=zero (see expectations.ts).
 */
import { afterAll, beforeAll, expect } from 'vitest';
import { startRedisCluster, type ManagedRedisCluster } from '../../../scripts/local-redis.js';
import type { ChaosConfig } from './config.js';
import { ZERO_VIOLATIONS, expectMode } from './expectations.js';
import type { ScenarioResult } from './scenario.js';

/** Start a 3-master, 3-replica cluster for this file; stopped (by pid) after it. */
export function useChaosCluster(config: ChaosConfig): () => ManagedRedisCluster {
  let cluster: ManagedRedisCluster | undefined;
  beforeAll(async () => {
    cluster = await startRedisCluster({ masters: 3, replicas: 1, nodeTimeoutMs: config.nodeTimeoutMs });
  }, 120_000);
  afterAll(async () => {
    await cluster?.stop();
  }, 60_000);
  return () => {
    if (!cluster) throw new Error('the chaos cluster did not start');
    return cluster;
  };
}

/** The harness did its job, and no call hung forever. */
export function expectHarnessWorked(result: ScenarioResult, config: ChaosConfig): void {
  const f = result.figures;
  expect(result.fatal).toEqual([]);
  expect(result.rounds).toHaveLength(config.rounds);
  for (const [i, round] of result.rounds.entries()) {
    expect(round.stalled, `workloads without progress after fault ${i + 1} (${round.fault.kind})`).toEqual([]);
  }
  expect(f['ephemeral.putsAcked']).toBeGreaterThan(0);
  expect(f['ephemeral.neverRaced'], 'acknowledged refs that no racer reported on').toBe(0);
  expect(f['ownership.grantedShared']! + f['ownership.grantedMut']!).toBeGreaterThan(0);
  expect(f['batches.putBatches']).toBeGreaterThan(0);
  expect(result.pendingAtEnd, 'calls that never settled').toEqual([]);
}

/** Under CHAOS_EXPECT=zero, every violation is 0; otherwise they were printed, nothing more. */
export function expectViolations(result: ScenarioResult): void {
  if (expectMode() !== 'zero') return;
  const nonZero = ZERO_VIOLATIONS.filter((k) => (result.figures[k] ?? 0) !== 0).map((k) => `${k} = ${result.figures[k]}`);
  expect(nonZero, `violations under ${result.kind}:\n${result.table}`).toEqual([]);
}
