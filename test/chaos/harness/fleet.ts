/**
 * The worker processes of one chaos scenario, seen from the test process: starts them, relays
 * each acknowledged ephemeral put to `racers` other workers, follows their progress, and runs
 * the end protocol (stop -> quiesced -> drain -> report -> exit).
 */
import type { ClusterNode } from '../../../src/index.js';
import { childEnv, spawnChild, type ChildHandle } from '../../harness/child.js';
import { targetEnv } from '../../harness/target.js';
import type { ChaosConfig } from './config.js';
import type { WorkloadName } from './ops.js';
import type { FromWorker, ToWorker, WorkerConfig, WorkerReport } from './protocol.js';

/** An acknowledged ephemeral put, as its producer reported it. */
export interface PutInfo {
  id: string;
  producer: number;
  key: string;
  slot: number;
  ackAt: number;
  ref: unknown;
  /** Pids of the workers it was sent to (the late delivery's last). */
  racers: number[];
}

const WORKER = 'test/chaos/children/worker.ts';
const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** Call `fn` on every message of `child`, past and future (the harness offers waitForMessage; a predicate that never matches is a listener). */
function listen(child: ChildHandle, fn: (msg: FromWorker) => void): void {
  child
    .waitForMessage((m) => {
      fn(m as FromWorker);
      return false;
    }, 24 * 3600_000)
    .catch(() => undefined); // settles when the child exits
}

export class Fleet {
  readonly puts = new Map<string, PutInfo>();
  readonly pids: number[] = [];
  readonly hotSlots: number[] = [];
  readonly fatal: string[] = [];
  private readonly progress: Record<WorkloadName, { ok: number; lastOkAt: number }>[] = [];
  private readonly reports: (WorkerReport | undefined)[] = [];
  private quiesced = 0;
  private readonly gone = new Set<number>();

  private constructor(
    readonly children: ChildHandle[],
    readonly workloads: WorkloadName[],
    private readonly config: ChaosConfig,
  ) {}

  static async start(opts: { nodes: ClusterNode[]; namespace: string; config: ChaosConfig; workloads: WorkloadName[] }): Promise<Fleet> {
    const { config } = opts;
    const children = Array.from({ length: config.processes }, (_, index) => {
      const worker: WorkerConfig = {
        index,
        workloads: opts.workloads,
        leaseTtl: config.leaseTtl,
        opDeadlineMs: config.opDeadlineMs,
        retryMs: config.retryMs,
        producers: config.producers,
        objects: config.objects,
        borrowers: config.borrowers,
        batch: config.batch,
        paceMs: config.paceMs,
      };
      return spawnChild(WORKER, {
        env: {
          ...childEnv({ redisUrl: `redis://${opts.nodes[0]!.host}:${opts.nodes[0]!.port}`, namespace: opts.namespace }),
          ...targetEnv({ kind: 'cluster', nodes: opts.nodes }),
          CHAOS_WORKER: JSON.stringify(worker),
        },
      });
    });
    const fleet = new Fleet(children, opts.workloads, config);
    children.forEach((child, i) => {
      listen(child, (msg) => fleet.onMessage(i, msg));
      child.exited.then(
        () => fleet.gone.add(i),
        () => fleet.gone.add(i),
      );
    });
    try {
      const ready = await Promise.all(
        children.map((c) => c.waitForMessage<{ pid: number; hotSlots: number[] }>((m) => (m as FromWorker).type === 'ready', 90_000)),
      );
      for (const r of ready) {
        fleet.pids.push(r.pid);
        fleet.hotSlots.push(...r.hotSlots);
      }
    } catch (err) {
      await fleet.exit();
      throw err;
    }
    return fleet;
  }

  private onMessage(i: number, msg: FromWorker): void {
    switch (msg.type) {
      case 'put':
        this.dispatch(i, msg);
        break;
      case 'beat':
        this.progress[i] = msg.progress;
        break;
      case 'quiesced':
        this.quiesced++;
        break;
      case 'report':
        this.reports[i] = msg.report;
        break;
      case 'fatal':
        this.fatal.push(`worker ${i} (pid ${this.children[i]?.pid}): ${msg.message}`);
        break;
    }
  }

  /** Send an acknowledged put to `racers` workers, others than its producer when there are enough. */
  private dispatch(producer: number, msg: Extract<FromWorker, { type: 'put' }>): void {
    const others = this.children.map((_, j) => j).filter((j) => j !== producer);
    for (let k = others.length - 1; k > 0; k--) {
      const m = Math.floor(Math.random() * (k + 1));
      [others[k], others[m]] = [others[m]!, others[k]!];
    }
    const chosen = others.slice(0, this.config.racers);
    if (chosen.length < this.config.racers) chosen.push(producer);
    const racers = chosen.map((j) => this.children[j]!.pid);
    this.puts.set(msg.id, { id: msg.id, producer: this.children[producer]!.pid, key: msg.key, slot: msg.slot, ackAt: msg.ackAt, ref: msg.ref, racers });
    const consume: ToWorker = { type: 'consume', id: msg.id, ref: msg.ref, slot: msg.slot };
    for (const j of chosen) void this.children[j]!.send(consume).catch(() => undefined);
    if (this.config.lateDeliveryMs > 0) {
      // A duplicate delivery, later, to a worker that was not racing when there is one.
      const late = others[this.config.racers] ?? others[0] ?? producer;
      setTimeout(() => {
        this.puts.get(msg.id)?.racers.push(this.children[late]!.pid);
        void this.children[late]!.send(consume).catch(() => undefined);
      }, this.config.lateDeliveryMs);
    }
  }

  private sendAll(msg: ToWorker): Promise<void> {
    return Promise.all(this.children.map((c) => c.send(msg))).then(() => undefined);
  }

  go(): Promise<void> {
    return this.sendAll({ type: 'go' });
  }

  /** The latest success of `workload` in any worker (epoch ms; 0 if none). */
  lastSuccess(workload: WorkloadName): number {
    return Math.max(0, ...this.progress.map((p) => p?.[workload]?.lastOkAt ?? 0));
  }

  /**
   * Wait until every workload has succeeded at least once after `since` (epoch ms). Returns the
   * workloads that did not within `timeoutMs` (empty: all made progress).
   */
  async waitProgress(since: number, timeoutMs: number): Promise<WorkloadName[]> {
    const until = Date.now() + timeoutMs;
    for (;;) {
      if (this.fatal.length > 0) throw new Error(`a chaos worker failed:\n${this.fatal.join('\n')}`);
      const stalled = this.workloads.filter((w) => this.lastSuccess(w) <= since);
      if (stalled.length === 0 || Date.now() > until) return stalled;
      await sleep(200);
    }
  }

  /** Stop the workloads, let them finish and clean up, and collect every worker's report. */
  async finish(): Promise<WorkerReport[]> {
    await this.sendAll({ type: 'stop' });
    await this.until('every worker to stop its loops', () => this.quiesced === this.children.length, this.config.opDeadlineMs + 60_000);
    // The last late deliveries go out at most lateDeliveryMs after the last put.
    if (this.config.lateDeliveryMs > 0) await sleep(this.config.lateDeliveryMs + 200);
    // Puts acknowledged just before the stop were relayed before `quiesced` arrived (one IPC
    // channel per worker keeps order), so every racer has its refs by now.
    await this.sendAll({ type: 'drain' });
    await this.until(
      'every worker to finish, clean up and report',
      () => this.reports.filter(Boolean).length === this.children.length,
      2 * this.config.opDeadlineMs + this.config.retryMs + this.config.leaseTtl * 1000 + 120_000,
    );
    return this.reports as WorkerReport[];
  }

  private async until(what: string, done: () => boolean, timeoutMs: number): Promise<void> {
    const limit = Date.now() + timeoutMs;
    while (!done()) {
      if (this.fatal.length > 0) throw new Error(`a chaos worker failed while waiting for ${what}:\n${this.fatal.join('\n')}`);
      const gone = [...this.gone].filter((i) => this.reports[i] === undefined);
      if (gone.length > 0) {
        const stderr = gone.map((i) => `worker ${i} (pid ${this.children[i]?.pid}) exited; stderr:\n${this.children[i]?.stderr.split('\n').slice(-20).join('\n')}`);
        throw new Error(`chaos: a worker exited while waiting for ${what}\n${stderr.join('\n')}`);
      }
      if (Date.now() > limit) {
        const stderr = this.children.map((c, i) => `worker ${i} (pid ${c.pid}) stderr:\n${c.stderr.split('\n').slice(-15).join('\n')}`);
        throw new Error(`chaos: timed out after ${timeoutMs} ms waiting for ${what}\n${stderr.join('\n')}`);
      }
      await sleep(200);
    }
  }

  /** Ask every worker to exit; SIGKILL those still running after 20 s. */
  async exit(): Promise<void> {
    await Promise.all(
      this.children.map(async (c) => {
        await c.send({ type: 'exit' } satisfies ToWorker).catch(() => undefined);
        const timer = setTimeout(() => c.kill('SIGKILL'), 20_000);
        await c.exited.catch(() => undefined);
        clearTimeout(timer);
      }),
    );
  }
}
