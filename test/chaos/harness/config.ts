/**
 * Size and behaviour knobs of the chaos suite, read from the environment by the test
 * process and by its worker children alike (no vitest dependency).
 *
 * `CHAOS_SIZE=ci` (default) keeps the whole suite around 60-90 s; `CHAOS_SIZE=nightly` runs
 * longer workloads, more rounds of each fault and larger reshards. Every knob can be set on its
 * own (`CHAOS_SECONDS=120`, ...); see docs/chaos.md.
 */

export type ChaosSize = 'ci' | 'nightly';

export interface ChaosConfig {
  size: ChaosSize;
  /** Least seconds each scenario's workload runs (CHAOS_SECONDS). */
  seconds: number;
  /** Faults per scenario, one after the other, on masters 0, 1, 2, 0, ... (CHAOS_ROUNDS). */
  rounds: number;
  /** Worker processes; each runs every workload (CHAOS_PROCESSES). */
  processes: number;
  /** How long freezeMaster keeps a master stopped, ms (CHAOS_FREEZE_MS). */
  freezeMs: number;
  /** Slots moved by one reshard round, besides the workload's long-lived slots (CHAOS_RESHARD_SLOTS). */
  reshardSlots: number;
  /**
   * Ms a long-lived ("hot") slot stays in migration before its keys move, and again with half of
   * them moved (CHAOS_HOT_SLOT_PAUSE_MS).
   */
  hotSlotPauseMs: number;
  /** Store `leaseTtl` of the workers, seconds (CHAOS_LEASE_TTL). */
  leaseTtl: number;
  /** A call not settled after this many ms is counted as hung (CHAOS_OP_DEADLINE_MS). */
  opDeadlineMs: number;
  /** How long an application-like retry of a failed resolve/release keeps trying, ms (CHAOS_RETRY_MS). */
  retryMs: number;
  /** Ephemeral producer loops per worker (CHAOS_PRODUCERS). */
  producers: number;
  /** Consumers racing for each ephemeral ref, each in another process when possible (CHAOS_RACERS). */
  racers: number;
  /**
   * Ms after which each ephemeral ref is delivered once more, to one more worker: a duplicate
   * delivery, as an at-least-once queue makes. It must be told "consumed by"; if it gets the
   * value, an acknowledged consume was undone. 0: no late delivery (CHAOS_LATE_DELIVERY_MS).
   */
  lateDeliveryMs: number;
  /** Owned objects per worker (CHAOS_OBJECTS) and concurrent borrow loops over them (CHAOS_BORROWERS). */
  objects: number;
  borrowers: number;
  /** Values per putBatch/proxyBatch (CHAOS_BATCH). */
  batch: number;
  /** Pause of each loop between two operations, ms (CHAOS_PACE_MS): keeps the load bounded. */
  paceMs: number;
  /** cluster-node-timeout, ms (CHAOS_NODE_TIMEOUT_MS). */
  nodeTimeoutMs: number;
}

const DEFAULTS: Record<ChaosSize, ChaosConfig> = {
  ci: {
    size: 'ci',
    seconds: 10,
    rounds: 1,
    processes: 3,
    freezeMs: 8_000,
    reshardSlots: 400,
    hotSlotPauseMs: 2_000,
    leaseTtl: 10,
    opDeadlineMs: 30_000,
    retryMs: 15_000,
    producers: 2,
    racers: 2,
    lateDeliveryMs: 3_000,
    objects: 3,
    borrowers: 3,
    batch: 20,
    paceMs: 10,
    nodeTimeoutMs: 2_000,
  },
  nightly: {
    size: 'nightly',
    seconds: 60,
    rounds: 3,
    processes: 4,
    freezeMs: 8_000,
    reshardSlots: 1_500,
    hotSlotPauseMs: 3_000,
    leaseTtl: 10,
    opDeadlineMs: 30_000,
    retryMs: 15_000,
    producers: 3,
    racers: 2,
    lateDeliveryMs: 3_000,
    objects: 4,
    borrowers: 4,
    batch: 50,
    paceMs: 5,
    nodeTimeoutMs: 2_000,
  },
};

const KNOBS: [keyof ChaosConfig, string][] = [
  ['seconds', 'CHAOS_SECONDS'],
  ['rounds', 'CHAOS_ROUNDS'],
  ['processes', 'CHAOS_PROCESSES'],
  ['freezeMs', 'CHAOS_FREEZE_MS'],
  ['reshardSlots', 'CHAOS_RESHARD_SLOTS'],
  ['hotSlotPauseMs', 'CHAOS_HOT_SLOT_PAUSE_MS'],
  ['leaseTtl', 'CHAOS_LEASE_TTL'],
  ['opDeadlineMs', 'CHAOS_OP_DEADLINE_MS'],
  ['retryMs', 'CHAOS_RETRY_MS'],
  ['producers', 'CHAOS_PRODUCERS'],
  ['racers', 'CHAOS_RACERS'],
  ['lateDeliveryMs', 'CHAOS_LATE_DELIVERY_MS'],
  ['objects', 'CHAOS_OBJECTS'],
  ['borrowers', 'CHAOS_BORROWERS'],
  ['batch', 'CHAOS_BATCH'],
  ['paceMs', 'CHAOS_PACE_MS'],
  ['nodeTimeoutMs', 'CHAOS_NODE_TIMEOUT_MS'],
];

/** The configuration for this run; a malformed knob is an error naming it. */
export function chaosConfig(env: NodeJS.ProcessEnv = process.env): ChaosConfig {
  const sizeText = env.CHAOS_SIZE ?? 'ci';
  if (sizeText !== 'ci' && sizeText !== 'nightly') {
    throw new Error(`CHAOS_SIZE must be ci or nightly, got ${JSON.stringify(sizeText)}`);
  }
  const config: ChaosConfig = { ...DEFAULTS[sizeText] };
  for (const [field, name] of KNOBS) {
    const text = env[name];
    if (text === undefined || text === '') continue;
    const n = Number(text);
    const min = field === 'paceMs' || field === 'lateDeliveryMs' ? 0 : 1;
    if (!/^\d+$/.test(text) || n < min) throw new Error(`${name} must be an integer >= ${min}, got ${JSON.stringify(text)}`);
    (config as unknown as Record<string, number>)[field] = n;
  }
  if (config.racers > config.processes) {
    throw new Error(`CHAOS_RACERS (${config.racers}) cannot exceed CHAOS_PROCESSES (${config.processes})`);
  }
  return config;
}

/**
 * Per-test timeout: the workload, each round's fault and settling (a kill takes ~4 s to fail
 * over, a freeze `freezeMs`, a reshard a few s per hundred slots), the drain (ops may run to
 * their deadline) and a wide margin for a loaded machine.
 */
export function scenarioTimeoutMs(config: ChaosConfig): number {
  const perRound = 90_000 + config.freezeMs + config.reshardSlots * 40;
  return config.seconds * 1000 + config.rounds * perRound + 2 * config.opDeadlineMs + 120_000;
}
