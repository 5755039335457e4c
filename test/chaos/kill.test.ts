/**
 * Chaos: a master is SIGKILLed while every workload runs; its replica is promoted, and the
 * killed node is restarted as a replica before the next round (so each round has 3+3).
 */
import { describe, expect, inject, test } from 'vitest';
import { chaosConfig, scenarioTimeoutMs } from './harness/config.js';
import { runScenario } from './harness/scenario.js';
import { expectHarnessWorked, expectViolations, useChaosCluster } from './harness/suite.js';

const config = chaosConfig();

describe('chaos: kill', () => {
  const cluster = useChaosCluster(config);

  test('workloads across a SIGKILLed master: its replica takes over, every call settles', { timeout: scenarioTimeoutMs(config) }, async () => {
    const result = await runScenario('kill', cluster(), config, inject('chaosReportDir'));
    for (const round of result.rounds) {
      // The fault really happened: another node serves the shard, and the killed one came back.
      expect(round.fault.promotedAfterMs).toBeGreaterThan(0);
      expect(round.fault.master?.port).not.toBe(round.fault.node.port);
      expect(round.restart?.kind).toBe('restart');
    }
    expectHarnessWorked(result, config);
    expectViolations(result);
  });
});
