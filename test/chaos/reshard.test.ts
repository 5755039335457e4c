/**
 * Chaos: slots move from one master to the next while the workloads run: first the slots of
 * the workers' long-lived owned objects and lifetimes (each held in migration a while, its keys
 * moved one per MIGRATE, so an object's keys sit on both nodes meanwhile), then CHAOS_RESHARD_SLOTS
 * more in bulk.
 */
import { describe, expect, inject, test } from 'vitest';
import { chaosConfig, scenarioTimeoutMs } from './harness/config.js';
import { runScenario } from './harness/scenario.js';
import { expectHarnessWorked, expectViolations, useChaosCluster } from './harness/suite.js';

const config = chaosConfig();

describe('chaos: reshard', () => {
  const cluster = useChaosCluster(config);

  test('workloads across resharding: calls hit slots in migration, every call settles', { timeout: scenarioTimeoutMs(config) }, async () => {
    const result = await runScenario('reshard', cluster(), config, inject('chaosReportDir'));
    for (const round of result.perRound) {
      expect(round.slotsMoved).toBeGreaterThan(0);
      expect(round.keysMoved).toBeGreaterThan(0);
      // The workload really met slots in migration.
      expect(round.callsOnMigratingSlots).toBeGreaterThan(0);
    }
    expectHarnessWorked(result, config);
    expectViolations(result);
  });
});
