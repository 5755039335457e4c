/**
 * Chaos: a master is frozen (SIGSTOP, as a VM stall or a long GC pause would) for longer than
 * a failover takes, then resumed: it finds its replica promoted and comes back as its replica,
 * dropping whatever it accepted that the new master never saw.
 */
import { describe, expect, inject, test } from 'vitest';
import { chaosConfig, scenarioTimeoutMs } from './harness/config.js';
import { runScenario } from './harness/scenario.js';
import { expectHarnessWorked, expectViolations, useChaosCluster } from './harness/suite.js';

const config = chaosConfig();

describe('chaos: freeze', () => {
  const cluster = useChaosCluster(config);

  test('workloads across a frozen master: its replica takes over, it rejoins as a replica, every call settles', { timeout: scenarioTimeoutMs(config) }, async () => {
    const result = await runScenario('freeze', cluster(), config, inject('chaosReportDir'));
    for (const round of result.rounds) {
      expect(round.fault.frozenMs).toBeGreaterThanOrEqual(config.freezeMs);
      // A failover during the freeze is the case this scenario is for. If it did not happen
      // (a very loaded machine), raise CHAOS_FREEZE_MS.
      expect(round.fault.demoted, `the replica of ${round.fault.node.port} was not promoted within the ${config.freezeMs} ms freeze`).toBe(true);
    }
    expectHarnessWorked(result, config);
    expectViolations(result);
  });
});
