/**
 * One chaos scenario: start the worker fleet on a 3+3 cluster, let every workload make
 * progress, apply `rounds` faults of one kind (each on the next master), keep the workloads
 * running for at least `seconds`, stop them, let them clean up, then look at what is left in
 * Redis and compute the figures.
 */
import { randomBytes } from 'node:crypto';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import type { FaultReport, ManagedRedisCluster } from '../../../scripts/local-redis.js';
import { RedisConnector, Store, fromRef, resolve } from '../../../src/index.js';
import { analyse, formatScenario, type Aftermath, type FaultKind, type RoundResult, type ScenarioFigures } from './analysis.js';
import type { ChaosConfig } from './config.js';
import { Fleet } from './fleet.js';
import type { WorkloadName } from './ops.js';

export const WORKLOADS: WorkloadName[] = ['ephemeral', 'ownership', 'batches'];

/** How long a workload may take to succeed again once the cluster has settled after a fault. */
const PROGRESS_TIMEOUT_MS = 60_000;

export interface ScenarioResult extends ScenarioFigures {
  kind: FaultKind;
  rounds: RoundResult[];
  after: Aftermath;
  seconds: number;
  table: string;
  /** Workloads that made no progress before the first fault (the harness itself failed). */
  warmupStalled: WorkloadName[];
  fatal: string[];
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

function slotSet(ranges: [number, number][]): Set<number> {
  const out = new Set<number>();
  for (const [a, b] of ranges) for (let s = a; s <= b; s++) out.add(s);
  return out;
}

/**
 * Apply fault number `round` of `kind`: on master `round % masters`, or, for a reshard, from the
 * master serving the most hot slots (so every round moves some: masters are renumbered by their
 * lowest slot after each reshard) to the next.
 */
async function applyFault(kind: FaultKind, round: number, cluster: ManagedRedisCluster, config: ChaosConfig, fleet: Fleet) {
  const shards = await cluster.shards();
  let i = round % shards.length;
  if (kind === 'reshard') {
    const hotCount = shards.map((s) => fleet.hotSlots.filter((slot) => s.slots.some(([a, b]) => a <= slot && slot <= b)).length);
    const most = Math.max(...hotCount);
    if (most > 0 && hotCount[i] !== most) i = hotCount.indexOf(most);
  }
  const shard = shards[i]!;
  const owned = slotSet(shard.slots);
  switch (kind) {
    case 'kill':
      return { fault: await cluster.killMaster(i), affected: owned };
    case 'freeze':
      return { fault: await cluster.freezeMaster(i, config.freezeMs), affected: owned };
    case 'failover':
      return { fault: await cluster.failover(i), affected: owned };
    case 'reshard': {
      // The workload's long-lived objects and lifetimes first, all at once, each held in
      // migration a while (new keys of the slot go to the target, multi-key calls get TRYAGAIN)
      // and then with half its keys moved (split between the nodes); then bulk slots. Each
      // phase lasts `hotSlotPauseMs`: longer than ioredis's redirection retries (16 x 100 ms),
      // as a slot of many keys would on a real reshard.
      const hot = [...new Set(fleet.hotSlots.filter((s) => owned.has(s)))];
      const hotSet = new Set(hot);
      const bulk = [...owned].filter((s) => !hotSet.has(s)).slice(0, config.reshardSlots);
      const slots = [...hot, ...bulk];
      const fault = await cluster.reshard(i, (i + 1) % shards.length, slots, {
        pauseMs: (s) => (hotSet.has(s) ? config.hotSlotPauseMs : 2),
        batchKeys: (s, n) => (hotSet.has(s) ? Math.ceil(n / 2) : 50),
        parallel: Math.max(8, hot.length),
      });
      return { fault, affected: new Set(slots) };
    }
  }
}

/** Each master's keys of the namespace: those without TTL (by kind), and how many have one. */
async function scanNamespace(cluster: ManagedRedisCluster, namespace: string, remove: boolean): Promise<Aftermath & { total: number }> {
  const leaked: Record<string, number> = {};
  const sample: string[] = [];
  const leakedKeys: string[] = [];
  let withTtl = 0;
  let total = 0;
  for (const shard of await cluster.shards()) {
    const node = new Redis({ host: shard.master.host, port: shard.master.port, lazyConnect: true, maxRetriesPerRequest: 2 });
    node.on('error', () => {});
    try {
      let cursor = '0';
      do {
        const [next, keys] = await node.scan(cursor, 'MATCH', `${namespace}:*`, 'COUNT', 1000);
        cursor = next;
        if (keys.length === 0) continue;
        total += keys.length;
        const pipe = node.pipeline();
        for (const k of keys) pipe.pttl(k);
        const ttls = (await pipe.exec()) ?? [];
        keys.forEach((k, j) => {
          const ttl = ttls[j]?.[1];
          if (ttl === -1) {
            const kind = /^[^:]+:\{[^}]*\}:([a-z]+)/.exec(k)?.[1] ?? '?';
            leaked[kind] = (leaked[kind] ?? 0) + 1;
            leakedKeys.push(k);
            if (sample.length < 10) sample.push(k);
          } else if (typeof ttl === 'number' && ttl >= 0) {
            withTtl++;
          }
        });
        if (remove) {
          const del = node.pipeline();
          for (const k of keys) del.unlink(k);
          await del.exec();
        }
      } while (cursor !== '0');
    } finally {
      node.disconnect();
    }
  }
  return { stranded: 0, leaked, leakedSample: sample, leakedKeys, keysWithTtl: withTtl, total };
}

/**
 * Ephemeral objects that no racer consumed but that are still in Redis (every racer gave up on
 * unclear errors): consume them now, as a late application retry would, so that they are not
 * counted as lost nor leaked. Returns their ids.
 */
async function recoverStranded(fleet: Fleet, reports: { ephemeral?: { results: { id: string; got: boolean }[] } }[], cluster: ManagedRedisCluster, namespace: string): Promise<Set<string>> {
  const got = new Set<string>();
  for (const r of reports) for (const res of r.ephemeral?.results ?? []) if (res.got) got.add(res.id);
  const missing = [...fleet.puts.values()].filter((p) => !got.has(p.id));
  const stranded = new Set<string>();
  if (missing.length === 0) return stranded;
  const store = new Store('chaos', new RedisConnector({ nodes: cluster.nodes, namespace }), { register: true });
  try {
    for (const put of missing) {
      if (!(await store.exists(put.key).catch(() => false))) continue;
      stranded.add(put.id);
      await resolve(fromRef(put.ref)).catch(() => undefined);
    }
  } finally {
    await store.close();
  }
  return stranded;
}

/** Run one scenario; returns its figures (printed and written to `reportDir` too). */
export async function runScenario(kind: FaultKind, cluster: ManagedRedisCluster, config: ChaosConfig, reportDir: string): Promise<ScenarioResult> {
  const namespace = `c-${randomBytes(4).toString('hex')}`;
  await cluster.waitConverged();
  const fleet = await Fleet.start({ nodes: cluster.nodes, namespace, config, workloads: WORKLOADS });
  const rounds: RoundResult[] = [];
  let goAt = 0;
  let stoppedAt = 0;
  try {
    await fleet.go();
    goAt = Date.now();
    const warmupStalled = await fleet.waitProgress(goAt, PROGRESS_TIMEOUT_MS);
    if (warmupStalled.length > 0) {
      throw new Error(`chaos ${kind}: no progress before any fault in ${warmupStalled.join(', ')}; the harness or the cluster is broken`);
    }
    await sleep(1_000);
    for (let round = 0; round < config.rounds; round++) {
      const { fault, affected } = await applyFault(kind, round, cluster, config, fleet);
      const stalled = await fleet.waitProgress(fault.settledAt, PROGRESS_TIMEOUT_MS);
      let restart: FaultReport | undefined;
      if (kind === 'kill') restart = await cluster.restartNode();
      rounds.push({ fault, affected, stalled, ...(restart ? { restart } : {}) });
      await sleep(1_000);
    }
    const left = config.seconds * 1000 - (Date.now() - goAt);
    if (left > 0) await sleep(left);
    stoppedAt = Date.now();
    const reports = await fleet.finish();
    await fleet.exit();
    await cluster.waitConverged();
    const stranded = await recoverStranded(fleet, reports, cluster, namespace);
    const scan = await scanNamespace(cluster, namespace, true);
    const after: Aftermath = { ...scan, stranded: stranded.size };
    after.leakedKeys = [...new Set(after.leakedKeys)];
    const figures = analyse(fleet.puts, reports, rounds, after, stranded);
    const seconds = (stoppedAt - goAt) / 1000;
    const table = formatScenario(kind, figures, after, seconds);
    const result: ScenarioResult = { kind, rounds, after, seconds, table, warmupStalled, fatal: fleet.fatal, ...figures };
    await mkdir(reportDir, { recursive: true });
    await writeFile(
      join(reportDir, `${kind}.json`),
      JSON.stringify(
        {
          kind,
          size: config.size,
          config,
          seconds,
          figures: figures.figures,
          perRound: figures.perRound,
          errors: figures.errors,
          refusals: figures.refusals,
          overlapSamples: figures.overlapSamples,
          leaked: after.leaked,
          leakedSample: after.leakedSample,
          pendingAtEnd: figures.pendingAtEnd,
          table,
        },
        null,
        2,
      ),
    );
    console.log(table);
    return result;
  } finally {
    await fleet.exit();
    // Whatever happened, the next scenario starts from an empty namespace on a converged cluster.
    await scanNamespace(cluster, namespace, true).catch(() => undefined);
  }
}
