/**
 * Turns what a chaos scenario saw (the relayed puts, the workers' reports, the faults, the leak
 * scan) into figures, and prints them as one table per scenario.
 */
import type { FaultReport, ReshardReport } from '../../../scripts/local-redis.js';
import type { PutInfo } from './fleet.js';
import type { ErrorSeen, OpRecord, WorkloadName } from './ops.js';
import type { WorkerReport } from './protocol.js';

export type FaultKind = 'kill' | 'freeze' | 'failover' | 'reshard';

/** One fault of a scenario and what followed it. */
export interface RoundResult {
  fault: FaultReport | ReshardReport;
  /** The slots the fault hit: the shard of the faulted master, or the slots moved. */
  affected: Set<number>;
  /** Workloads with no success within the progress timeout after the cluster settled. */
  stalled: WorkloadName[];
  /** kill: the killed node's restart as a replica. */
  restart?: FaultReport;
}

/** What the parent found after the workers ended. */
export interface Aftermath {
  /** Ephemeral objects nobody consumed but still in Redis (consumed now by the parent). */
  stranded: number;
  /** Keys of the namespace without a TTL, by kind (`d`, `own`, `lt`, ...). */
  leaked: Record<string, number>;
  leakedSample: string[];
  /** Every key without a TTL. */
  leakedKeys: string[];
  /** Keys with a TTL left behind (tombstones, grace copies, ended markers): by design. */
  keysWithTtl: number;
}

export interface ScenarioFigures {
  /** Flat `section.metric` figures: what the table prints and what CHAOS_EXPECT=zero checks. */
  figures: Record<string, number>;
  perRound: {
    kind: string;
    node: number;
    promotedAfterMs?: number;
    settledAfterMs: number;
    demoted?: boolean;
    /** Per workload: ms from the fault's start to the first success on an affected slot of a call started after it (10 ms or more). */
    firstSuccessAfterMs: Partial<Record<WorkloadName, number>>;
    /** Failed calls that started between the fault and 5 s after the cluster settled. */
    failuresAroundFault: number;
    /** reshard: calls on a slot while it was in migration. */
    callsOnMigratingSlots?: number;
    failuresOnMigratingSlots?: number;
    keysMoved?: number;
    slotsMoved?: number;
    stalled: WorkloadName[];
  }[];
  errors: ErrorSeen[];
  /** Expected refusals (lost consume races, busy borrows), by `workload.op class`. */
  refusals: Record<string, number>;
  /** A few overlapping borrow pairs, as `key: kind start-end / kind start-end` (epoch ms). */
  overlapSamples: string[];
  pendingAtEnd: { w: WorkloadName; op: string; ageMs: number }[];
}

/** A call counts as started after a fault this long after it began. */
const AFTER_FAULT_MS = 10;

function slotsOf(r: OpRecord): number[] {
  return r.slot === undefined ? [] : Array.isArray(r.slot) ? r.slot : [r.slot];
}

function sum(reports: WorkerReport[], pick: (r: WorkerReport) => number | undefined): number {
  return reports.reduce((n, r) => n + (pick(r) ?? 0), 0);
}

export function analyse(puts: Map<string, PutInfo>, reports: WorkerReport[], rounds: RoundResult[], after: Aftermath, stranded: Set<string>): ScenarioFigures {
  const f: Record<string, number> = {};
  const ops = reports.flatMap((r) => r.ops);

  // Ephemeral: every acknowledged put, and what its racers got.
  const results = new Map<string, NonNullable<WorkerReport['ephemeral']>['results']>();
  for (const r of reports) for (const res of r.ephemeral?.results ?? []) results.set(res.id, [...(results.get(res.id) ?? []), res]);
  let once = 0;
  let double = 0;
  let wrong = 0;
  let lostUnexplained = 0;
  let lostAfterUnclear = 0;
  let ackedPutsLost = 0;
  let consumedByFailedCall = 0;
  let unraced = 0;
  let toldMissingButPresent = 0;
  let strandedAfterUnclear = 0;
  for (const put of puts.values()) {
    const rs = results.get(put.id) ?? [];
    if (rs.length === 0) {
      unraced++;
      continue;
    }
    const got = rs.filter((r) => r.got).length;
    wrong += rs.filter((r) => r.wrongValue).length;
    if (got === 1) once++;
    else if (got > 1) double++;
    else if (stranded.has(put.id)) {
      // Nobody got it, yet it was still there at the end: either every racer gave up on
      // unclear errors, or one was told "missing, never stored" about an object that existed.
      if (rs.some((r) => r.missing && r.consumedByPid === undefined)) toldMissingButPresent++;
      else strandedAfterUnclear++;
    } else {
      const unclear = rs.some((r) => r.unclear > 0 || r.gaveUp);
      if (unclear) lostAfterUnclear++;
      else lostUnexplained++;
      if (rs.every((r) => r.consumedByPid === undefined)) ackedPutsLost++;
      const racers = new Set(rs.map((r) => r.pid));
      if (rs.some((r) => r.consumedByPid !== undefined && racers.has(r.consumedByPid))) consumedByFailedCall++;
    }
  }
  // Ephemeral objects still in Redis at the end although somebody got their value: the
  // acknowledged consume was undone (they would be consumed again by a later resolve).
  const byKey = new Map([...puts.values()].map((p) => [p.key, p]));
  let consumedButBack = 0;
  for (const k of after.leakedKeys) {
    const put = byKey.get(/:d:(.*)$/.exec(k)?.[1] ?? '');
    if (put && (results.get(put.id) ?? []).some((r) => r.got)) consumedButBack++;
  }
  f['ephemeral.putsAcked'] = puts.size;
  f['ephemeral.putsFailed'] = sum(reports, (r) => r.ephemeral?.putsFailed);
  f['ephemeral.consumedOnce'] = once;
  f['ephemeral.doubleConsumes'] = double;
  f['ephemeral.wrongValues'] = wrong;
  f['ephemeral.lostUnexplained'] = lostUnexplained;
  f['ephemeral.ackedPutsLost'] = ackedPutsLost;
  f['ephemeral.lostAfterUnclearError'] = lostAfterUnclear;
  f['ephemeral.consumedByAFailedCall'] = consumedByFailedCall;
  f['ephemeral.toldMissingButPresent'] = toldMissingButPresent;
  f['ephemeral.strandedAfterUnclear'] = strandedAfterUnclear;
  f['ephemeral.consumedButBack'] = consumedButBack;
  f['ephemeral.neverRaced'] = unraced;

  const own = (k: keyof NonNullable<WorkerReport['ownership']>) => sum(reports, (r) => r.ownership?.[k] as number | undefined);
  for (const k of [
    'grantedShared',
    'grantedMut',
    'refusedBusy',
    'overlaps',
    'objectsWithOverlap',
    'sharedOverlaps',
    'releasesAcked',
    'releasesLapsed',
    'grantsUndone',
    'releasesFailed',
    'lostReleases',
    'updatesAcked',
    'updatesUnclear',
    'lostUpdates',
    'unclearApplied',
    'ownersLost',
    'dropsBlocked',
    'dropsFailed',
  ] as const) {
    f[`ownership.${k}`] = own(k);
  }

  const bat = (k: keyof NonNullable<WorkerReport['batches']>) => sum(reports, (r) => r.batches?.[k]);
  for (const k of [
    'putBatches',
    'putBatchesFailed',
    'proxyBatches',
    'proxyBatchesFailed',
    'getBatches',
    'getBatchesFailed',
    'batchKeysLost',
    'contextLifetimes',
    'closesFailed',
    'lifetimesLeftOpen',
    'membersAfterClose',
    'extendsAcked',
    'extendsFailed',
    'leaseEndsOff',
    'membersOutOfStep',
    'evictsFailed',
    'keysLeftBehind',
  ] as const) {
    f[`batches.${k}`] = bat(k);
  }

  // Errors, merged over the workers.
  const errors = new Map<string, ErrorSeen>();
  for (const r of reports) {
    for (const e of r.errors) {
      const key = `${e.cls}|${e.code ?? ''}|${e.shape}`;
      const seen = errors.get(key);
      if (seen) {
        seen.count += e.count;
        for (const w of e.where) if (!seen.where.includes(w)) seen.where.push(w);
      } else {
        errors.set(key, { ...e, where: [...e.where] });
      }
    }
  }
  const errorList = [...errors.values()].sort((a, b) => b.count - a.count);
  const pendingAtEnd = reports.flatMap((r) => r.pendingAtEnd);
  f['all.calls'] = ops.length;
  f['all.refusals'] = ops.filter((o) => o.refused).length;
  f['all.failedCalls'] = ops.filter((o) => !o.ok && !o.refused).length;
  f['all.hungCalls'] = ops.filter((o) => o.hung).length;
  f['all.pendingAtEnd'] = pendingAtEnd.length;
  f['all.lateSettled'] = sum(reports, (r) => r.lateSettled);
  f['all.rawErrors'] = errorList.filter((e) => e.raw !== undefined).reduce((n, e) => n + e.count, 0);
  f['all.untypedErrors'] = errorList.filter((e) => !e.typed && e.cls !== 'HungCallError').reduce((n, e) => n + e.count, 0);
  f['all.leakedKeys'] = Object.values(after.leaked).reduce((n, c) => n + c, 0);
  f['all.keysWithTtlLeft'] = after.keysWithTtl;

  const perRound = rounds.map((round) => {
    const { fault } = round;
    const settleWindowEnd = fault.settledAt + 5_000;
    const firstSuccessAfterMs: Partial<Record<WorkloadName, number>> = {};
    for (const w of ['ephemeral', 'ownership', 'batches'] as const) {
      // Started clearly after the fault: a call sent in the fault's own millisecond may have
      // been answered before the signal landed.
      const hits = ops.filter((o) => o.w === w && o.ok && o.t0 >= fault.startedAt + AFTER_FAULT_MS && slotsOf(o).some((s) => round.affected.has(s)));
      if (hits.length > 0) firstSuccessAfterMs[w] = Math.min(...hits.map((o) => o.t1)) - fault.startedAt;
    }
    const out: ScenarioFigures['perRound'][number] = {
      kind: fault.kind,
      node: fault.node.port,
      settledAfterMs: fault.settledAfterMs,
      firstSuccessAfterMs,
      failuresAroundFault: ops.filter((o) => !o.ok && !o.refused && o.t0 >= fault.startedAt && o.t0 <= settleWindowEnd).length,
      stalled: round.stalled,
      ...(fault.promotedAfterMs !== undefined ? { promotedAfterMs: fault.promotedAfterMs } : {}),
      ...(fault.demoted !== undefined ? { demoted: fault.demoted } : {}),
    };
    if (fault.kind === 'reshard') {
      const windows = new Map((fault as ReshardReport).windows.map((w) => [w.slot, w]));
      const onMigrating = ops.filter((o) =>
        slotsOf(o).some((s) => {
          const w = windows.get(s);
          return w !== undefined && o.t0 < w.end && o.t1 > w.start;
        }),
      );
      out.callsOnMigratingSlots = onMigrating.length;
      out.failuresOnMigratingSlots = onMigrating.filter((o) => !o.ok && !o.refused).length;
      out.keysMoved = (fault as ReshardReport).keys;
      out.slotsMoved = (fault as ReshardReport).slots.length;
    }
    return out;
  });
  const refusals: Record<string, number> = {};
  for (const r of reports) for (const [k, n] of Object.entries(r.refusals)) refusals[k] = (refusals[k] ?? 0) + n;
  const overlapSamples = reports.flatMap((r) => r.ownership?.overlapSamples ?? []).slice(0, 5);
  return { figures: f, perRound, errors: errorList, refusals, overlapSamples, pendingAtEnd };
}

const pad = (s: string, n: number) => (s.length >= n ? s : s + ' '.repeat(n - s.length));

/** The scenario's table, as printed and as written to the report directory. */
export function formatScenario(kind: FaultKind, figures: ScenarioFigures, after: Aftermath, seconds: number): string {
  const lines: string[] = [];
  lines.push(`=== chaos: ${kind} (${seconds.toFixed(0)} s of workload) ===`);
  figures.perRound.forEach((r, i) => {
    const parts = [
      `round ${i + 1}: ${r.kind} of ${r.node}`,
      r.promotedAfterMs !== undefined ? `replica promoted after ${r.promotedAfterMs} ms` : undefined,
      `settled after ${r.settledAfterMs} ms`,
      r.demoted !== undefined ? `old master ${r.demoted ? 'came back as a replica' : 'stayed master'}` : undefined,
      r.slotsMoved !== undefined ? `${r.slotsMoved} slots / ${r.keysMoved} keys moved` : undefined,
      r.callsOnMigratingSlots !== undefined ? `${r.callsOnMigratingSlots} calls on migrating slots (${r.failuresOnMigratingSlots} failed)` : undefined,
      `${r.failuresAroundFault} failed calls from the fault to 5 s after settling`,
      `first success on the affected slots after: ${
        Object.entries(r.firstSuccessAfterMs)
          .map(([w, ms]) => `${w} ${ms} ms`)
          .join(', ') || 'none'
      }`,
      r.stalled.length > 0 ? `NO PROGRESS after the fault: ${r.stalled.join(', ')}` : undefined,
    ].filter(Boolean);
    lines.push(`  ${parts.join('; ')}`);
  });
  const sections = new Map<string, [string, number][]>();
  for (const [k, v] of Object.entries(figures.figures)) {
    const [section, metric] = k.split('.') as [string, string];
    sections.set(section, [...(sections.get(section) ?? []), [metric, v]]);
  }
  for (const [section, rows] of sections) {
    lines.push(`  ${section}:`);
    for (let i = 0; i < rows.length; i += 3) {
      lines.push(`    ${rows.slice(i, i + 3).map(([m, v]) => pad(`${m} ${v}`, 34)).join('')}`.trimEnd());
    }
  }
  if (Object.keys(after.leaked).length > 0) {
    lines.push(`  keys without TTL by kind: ${Object.entries(after.leaked).map(([k, n]) => `${k} ${n}`).join(', ')}; e.g. ${after.leakedSample.slice(0, 3).join(' ')}`);
  }
  for (const o of figures.overlapSamples) lines.push(`  overlapping borrows: ${o}`);
  if (figures.pendingAtEnd.length > 0) {
    lines.push(`  calls never settled: ${figures.pendingAtEnd.map((p) => `${p.w}.${p.op} (${p.ageMs} ms)`).join(', ')}`);
  }
  lines.push(`  refusals (the rules at work, not errors): ${Object.entries(figures.refusals).map(([k, n]) => `${k} ${n}`).join(', ') || 'none'}`);
  lines.push(`  errors (count, typed?, class/code, raw internal, where: message shape):${figures.errors.length === 0 ? ' none' : ''}`);
  for (const e of figures.errors) {
    lines.push(
      `    ${pad(String(e.count), 6)} ${e.typed ? 'typed  ' : 'UNTYPED'} ${pad(`${e.cls}${e.code ? `/${e.code}` : ''}`, 42)} ${pad(e.raw ? `RAW ${e.raw}` : '-', 34)} ${e.where.slice(0, 4).join(',')}${e.where.length > 4 ? ',...' : ''}: ${e.shape}`,
    );
  }
  return lines.join('\n');
}

/** What a scenario wrote to the report directory (see scenario.ts). */
export interface ScenarioFile {
  kind: FaultKind;
  size: string;
  seconds: number;
  figures: Record<string, number>;
  perRound: ScenarioFigures['perRound'];
  errors: ErrorSeen[];
  table: string;
}

const COMPARED: [string, string][] = [
  ['ephemeral.putsAcked', 'ephemeral puts acknowledged'],
  ['ephemeral.doubleConsumes', 'double consumes'],
  ['ephemeral.lostUnexplained', 'lost, no error explains it'],
  ['ephemeral.ackedPutsLost', '  of which acknowledged puts lost'],
  ['ephemeral.lostAfterUnclearError', 'lost after an unclear error'],
  ['ephemeral.toldMissingButPresent', 'told "never stored" while present'],
  ['ephemeral.consumedButBack', 'consumed, yet back in Redis at the end'],
  ['ephemeral.strandedAfterUnclear', 'left unconsumed (retries ran out)'],
  ['ownership.borrowsGranted', 'borrows granted'],
  ['ownership.overlaps', 'overlapping exclusive borrows (pairs)'],
  ['ownership.grantsUndone', 'acknowledged borrows undone'],
  ['ownership.lostReleases', 'acknowledged releases lost'],
  ['ownership.lostUpdates', 'acknowledged updates lost'],
  ['ownership.ownersLost', 'owners lost (object evicted)'],
  ['ownership.dropsBlocked', 'drops blocked by a lingering borrow'],
  ['batches.batchesFailed', 'putBatch/proxyBatch failed'],
  ['batches.batchKeysLost', 'acknowledged batch keys lost'],
  ['batches.closesFailed', 'lifetime closes failed (retried)'],
  ['batches.extendsFailed', 'lease extends failed'],
  ['batches.leaseEndsOff', 'lease ends off the acknowledged extends'],
  ['batches.membersOutOfStep', 'members expiring off their lease end'],
  ['all.leakedKeys', 'keys without TTL left (leaks)'],
  ['all.hungCalls', 'calls past their deadline'],
  ['all.pendingAtEnd', 'calls never settled'],
  ['all.failedCalls', 'failed calls'],
  ['all.rawErrors', 'errors with raw Redis/ioredis text'],
  ['all.untypedErrors', 'errors not a ProxyStoreError'],
];

/** One table comparing the scenarios of a run: a column per fault kind. */
export function compareScenarios(files: ScenarioFile[]): string {
  const order: FaultKind[] = ['kill', 'freeze', 'failover', 'reshard'];
  const cols = order.map((k) => files.find((f) => f.kind === k)).filter((f): f is ScenarioFile => f !== undefined);
  const rounds = (f: ScenarioFile, pick: (r: ScenarioFile['perRound'][number]) => number | string | undefined) =>
    f.perRound.map((r) => pick(r) ?? '-').join(' / ');
  const rows: [string, ...string[]][] = [
    ['', ...cols.map((f) => f.kind)],
    ['seconds of workload', ...cols.map((f) => f.seconds.toFixed(0))],
    ['replica promoted after (ms)', ...cols.map((f) => rounds(f, (r) => r.promotedAfterMs))],
    ['cluster settled after (ms)', ...cols.map((f) => rounds(f, (r) => r.settledAfterMs))],
    ...(['ephemeral', 'ownership', 'batches'] as const).map(
      (w): [string, ...string[]] => [`first ${w} success after the fault (ms)`, ...cols.map((f) => rounds(f, (r) => r.firstSuccessAfterMs[w]))],
    ),
    ['failed calls, fault to settled + 5 s', ...cols.map((f) => rounds(f, (r) => r.failuresAroundFault))],
    ['calls on migrating slots (failed)', ...cols.map((f) => rounds(f, (r) => (r.callsOnMigratingSlots === undefined ? undefined : `${r.callsOnMigratingSlots} (${r.failuresOnMigratingSlots})`)))],
  ];
  for (const [key, label] of COMPARED) {
    rows.push([
      label,
      ...cols.map((f) => {
        const g = f.figures;
        if (key === 'ownership.borrowsGranted') return String((g['ownership.grantedShared'] ?? 0) + (g['ownership.grantedMut'] ?? 0));
        if (key === 'batches.batchesFailed') return String((g['batches.putBatchesFailed'] ?? 0) + (g['batches.proxyBatchesFailed'] ?? 0));
        return String(g[key] ?? '-');
      }),
    ]);
  }
  rows.push(['raw texts seen', ...cols.map((f) => [...new Set(f.errors.filter((e) => e.raw).map((e) => e.raw))].join(', ') || '-')]);
  rows.push(['error classes seen', ...cols.map((f) => [...new Set(f.errors.map((e) => (e.code ? `${e.cls}` : e.cls)))].join(', ') || '-')]);
  const widths = rows[0]!.map((_, c) => Math.max(...rows.map((r) => (r[c] ?? '').length)));
  const line = (r: string[]) => `| ${r.map((cell, c) => pad(cell, widths[c]!)).join(' | ')} |`;
  return [line(rows[0]!), `|${widths.map((w) => '-'.repeat(w + 2)).join('|')}|`, ...rows.slice(1).map(line)].join('\n');
}
