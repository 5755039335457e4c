/**
 * Chaos: a graceful failover (CLUSTER FAILOVER on a replica, as in a planned maintenance):
 * the replica catches up, takes over, and the old master becomes its replica. No write may be
 * lost here even without any durability option.
 */
import { describe, expect, inject, test } from 'vitest';
import { chaosConfig, scenarioTimeoutMs } from './harness/config.js';
import { runScenario } from './harness/scenario.js';
import { expectHarnessWorked, expectViolations, useChaosCluster } from './harness/suite.js';

const config = chaosConfig();

describe('chaos: graceful failover', () => {
  const cluster = useChaosCluster(config);

  test('workloads across a graceful failover: roles swap, every call settles', { timeout: scenarioTimeoutMs(config) }, async () => {
    const result = await runScenario('failover', cluster(), config, inject('chaosReportDir'));
    for (const round of result.rounds) {
      expect(round.fault.master?.port).not.toBe(round.fault.node.port);
      expect(round.fault.demoted).toBe(true);
    }
    expectHarnessWorked(result, config);
    expectViolations(result);
  });
});
