/**
 * Batches and lifetimes workload (one worker's part). One loop cycles through:
 *
 * - `putBatch` then `connector.getBatch` of the keys (an acknowledged key found missing is lost);
 * - `proxyBatch`;
 * - a ContextLifetime: puts and a proxy under it, a foreign plain key added with `addKey`, close
 *   (then every member must be gone);
 * - a LeaseLifetime: puts under it, a foreign member, two `extend(5)`, then its lease end must
 *   equal the start plus the acknowledged extends, and every member must expire at that end;
 *
 * and evicts the plain keys it holds, a few per step. Besides, each worker keeps one long-lived
 * ContextLifetime (a member added every step) and one long-lived LeaseLifetime (extended by 1 s
 * every fourth step): their slots are "hot" for a reshard to move while they are in use.
 * At the end everything held is evicted or closed, retrying until it works or time runs out.
 */
import type { Cluster, Redis } from 'ioredis';
import { ContextLifetime, LeaseLifetime, getKey, type Store } from '../../../src/index.js';
import { dataExpireTimes, leaseEnd, slotOfKey, slotOfLifetime } from '../harness/inspect.js';
import { isUnclear, type OpLog } from '../harness/ops.js';
import type { BatchesReport, WorkerConfig } from '../harness/protocol.js';

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));
const LEASE_SECONDS = 120;
const EXTEND_SECONDS = 5;

interface HeldLifetime {
  lifetime: ContextLifetime;
  members: string[];
}

export class BatchesWorkload {
  private step = 0;
  private seq = 0;
  /** Plain keys this worker put and must evict. */
  private readonly held = new Set<string>();
  /** Lifetimes whose close failed: closed again at the end. */
  private readonly open: HeldLifetime[] = [];
  private longContext: ContextLifetime | undefined;
  private longLease: { lease: LeaseLifetime; start?: number; acked: number; unclear: number; members: string[] } | undefined;
  private readonly r: BatchesReport = {
    putBatches: 0,
    putBatchesFailed: 0,
    proxyBatches: 0,
    proxyBatchesFailed: 0,
    getBatches: 0,
    getBatchesFailed: 0,
    batchKeysLost: 0,
    contextLifetimes: 0,
    closesFailed: 0,
    lifetimesLeftOpen: 0,
    membersAfterClose: 0,
    extendsAcked: 0,
    extendsFailed: 0,
    leaseEndsOff: 0,
    membersOutOfStep: 0,
    evictsFailed: 0,
    keysLeftBehind: 0,
  };

  constructor(
    private readonly store: Store,
    private readonly log: OpLog,
    private readonly audit: Redis | Cluster,
    private readonly config: WorkerConfig,
  ) {}

  private slots(keys: string[]): number[] {
    return [...new Set(keys.map((k) => slotOfKey(this.store, k)))];
  }

  private values(n: number): { b: number; pad: string }[] {
    return Array.from({ length: n }, () => ({ b: ++this.seq, pad: 'b'.repeat(100) }));
  }

  /** The long-lived lifetimes (before any fault). */
  async setup(): Promise<void> {
    this.longContext = new ContextLifetime(this.store, { name: `chaos-long-${process.pid}` });
    const lease = new LeaseLifetime(this.store, { expiry: LEASE_SECONDS, name: `chaos-lease-${process.pid}` });
    const first = await this.store.put({ first: true }, { lifetime: lease });
    this.longLease = { lease, acked: 0, unclear: 0, members: [first] };
    const start = await leaseEnd(this.audit, this.store, lease.id);
    if (start !== undefined) this.longLease.start = start;
    await this.store.put({ first: true }, { lifetime: this.longContext });
  }

  hotSlots(): number[] {
    const out: number[] = [];
    if (this.longContext) out.push(slotOfLifetime(this.store, this.longContext.id));
    if (this.longLease) out.push(slotOfLifetime(this.store, this.longLease.lease.id));
    return out;
  }

  loops(running: () => boolean): Promise<void>[] {
    return [this.loop(running)];
  }

  private async loop(running: () => boolean): Promise<void> {
    while (running()) {
      const kind = this.step++ % 4;
      if (kind === 0) await this.putThenGet();
      else if (kind === 1) await this.proxies();
      else if (kind === 2) await this.contextCycle();
      else await this.leaseCycle();
      await this.touchLongLived();
      await this.evictSome(2 * this.config.batch);
      await Promise.all([sleep(this.config.paceMs), sleep(20)]);
    }
  }

  private async putThenGet(): Promise<void> {
    const put = await this.log.run('batches', 'putBatch', () => this.store.putBatch(this.values(this.config.batch)), (keys) =>
      keys ? this.slots(keys) : undefined,
    );
    if (!put.ok) {
      this.r.putBatchesFailed++;
      return;
    }
    this.r.putBatches++;
    for (const k of put.value) this.held.add(k);
    const got = await this.log.run('batches', 'getBatch', () => this.store.connector.getBatch(put.value), this.slots(put.value));
    if (!got.ok) {
      this.r.getBatchesFailed++;
      return;
    }
    this.r.getBatches++;
    this.r.batchKeysLost += got.value.filter((b) => b === undefined).length;
  }

  private async proxies(): Promise<void> {
    const r = await this.log.run('batches', 'proxyBatch', () => this.store.proxyBatch(this.values(this.config.batch)), (ps) =>
      ps ? this.slots(ps.map((p) => getKey(p))) : undefined,
    );
    if (!r.ok) {
      this.r.proxyBatchesFailed++;
      return;
    }
    this.r.proxyBatches++;
    for (const p of r.value) this.held.add(getKey(p));
  }

  /** A plain key added to `lifetime` as a foreign member (or kept for eviction if that fails). */
  private async foreignMember(lifetime: ContextLifetime, members: string[]): Promise<void> {
    const put = await this.log.run('batches', 'put', () => this.store.put({ foreign: ++this.seq }), (k) => (k ? slotOfKey(this.store, k) : undefined));
    if (!put.ok) return;
    this.held.add(put.value);
    const add = await this.log.run('batches', 'addKey', () => lifetime.addKey(put.value), slotOfLifetime(this.store, lifetime.id));
    if (add.ok) {
      this.held.delete(put.value);
      members.push(put.value);
    }
  }

  private async contextCycle(): Promise<void> {
    const lifetime = new ContextLifetime(this.store);
    const slot = slotOfLifetime(this.store, lifetime.id);
    const members: string[] = [];
    this.r.contextLifetimes++;
    for (let i = 0; i < 3; i++) {
      const r = await this.log.run('batches', 'lifetimePut', () => this.store.put({ m: ++this.seq }, { lifetime }), slot);
      if (r.ok) members.push(r.value);
    }
    const p = await this.log.run('batches', 'lifetimeProxy', () => this.store.proxy({ m: ++this.seq }, { lifetime }), slot);
    if (p.ok) members.push(getKey(p.value));
    await this.foreignMember(lifetime, members);
    await this.closeAndCheck({ lifetime, members });
  }

  private async closeAndCheck(held: HeldLifetime): Promise<boolean> {
    const slot = slotOfLifetime(this.store, held.lifetime.id);
    const closed = await this.log.run('batches', 'close', () => held.lifetime.close(), slot);
    if (!closed.ok) {
      this.r.closesFailed++;
      this.open.push(held);
      return false;
    }
    for (const key of held.members) {
      const e = await this.log.run('batches', 'exists', () => this.store.exists(key), slotOfKey(this.store, key));
      if (e.ok && e.value) this.r.membersAfterClose++;
    }
    return true;
  }

  private async leaseCycle(): Promise<void> {
    const lease = new LeaseLifetime(this.store, { expiry: LEASE_SECONDS });
    const slot = slotOfLifetime(this.store, lease.id);
    const members: string[] = [];
    for (let i = 0; i < 2; i++) {
      const r = await this.log.run('batches', 'lifetimePut', () => this.store.put({ l: ++this.seq }, { lifetime: lease }), slot);
      if (r.ok) members.push(r.value);
    }
    await this.foreignMember(lease, members);
    const start = await leaseEnd(this.audit, this.store, lease.id).catch(() => undefined);
    let acked = 0;
    let unclear = 0;
    for (let i = 0; i < 2; i++) {
      const r = await this.extend(lease, EXTEND_SECONDS, slot);
      if (r.ok) acked++;
      else if (r.unclear) unclear++;
    }
    if (start !== undefined) await this.checkLease(lease, start, acked, unclear, members, EXTEND_SECONDS);
    await this.closeAndCheck({ lifetime: lease, members });
  }

  /**
   * `lease.extend(seconds)`, and after a failure the same call again on the same handle, as its
   * error tells an application to ("call extend(n) again on this handle to finish; it is not
   * applied twice"), until it goes through or the retry budget (`retryMs`) runs out. Every
   * failed attempt counts in `extendsFailed`; `unclear`: the last failure may have applied it.
   */
  private async extend(lease: LeaseLifetime, seconds: number, slot: number): Promise<{ ok: boolean; unclear: boolean }> {
    const started = Date.now();
    for (let backoff = 100; ; backoff = Math.min(2 * backoff, 2_000)) {
      const r = await this.log.run('batches', 'extend', () => lease.extend(seconds), slot);
      if (r.ok) {
        this.r.extendsAcked++;
        return { ok: true, unclear: false };
      }
      this.r.extendsFailed++;
      // A hung call may still be running on this handle: another call now would race it.
      if (r.hung) return { ok: false, unclear: true };
      const unclear = isUnclear(r.error) || /call extend\(.*\) again on this handle/.test(r.error instanceof Error ? r.error.message : '');
      if (!unclear || Date.now() - started > this.config.retryMs) return { ok: false, unclear };
      await sleep(backoff);
    }
  }

  /** The lease's end must be start + the acknowledged extends (each unclear one either way), and every member must expire then. */
  private async checkLease(lease: LeaseLifetime, start: number, acked: number, unclear: number, members: string[], step: number): Promise<void> {
    try {
      const end = await leaseEnd(this.audit, this.store, lease.id);
      if (end === undefined) return;
      const low = start + acked * step * 1000;
      const high = low + unclear * step * 1000;
      if (end < low || end > high || (end - low) % (step * 1000) !== 0) this.r.leaseEndsOff++;
      const times = await dataExpireTimes(this.audit, this.store, members);
      for (const t of times) if (t >= 0 && Math.abs(t - end) > 2) this.r.membersOutOfStep++;
    } catch {
      // an audit read failing during a fault proves nothing
    }
  }

  private async touchLongLived(): Promise<void> {
    const context = this.longContext;
    if (context) {
      await this.log.run('batches', 'lifetimePut', () => this.store.put({ long: ++this.seq }, { lifetime: context }), slotOfLifetime(this.store, context.id));
    }
    const long = this.longLease;
    if (long && this.step % 4 === 0) {
      const slot = slotOfLifetime(this.store, long.lease.id);
      const put = await this.log.run('batches', 'lifetimePut', () => this.store.put({ long: ++this.seq }, { lifetime: long.lease }), slot);
      if (put.ok) long.members.push(put.value);
      const r = await this.extend(long.lease, 1, slot);
      if (r.ok) long.acked++;
      else if (r.unclear) long.unclear++;
    }
  }

  private async evictSome(n: number): Promise<void> {
    const keys = [...this.held].slice(0, n);
    await Promise.all(
      keys.map(async (key) => {
        const r = await this.log.run('batches', 'evict', () => this.store.evict(key), slotOfKey(this.store, key));
        if (r.ok) this.held.delete(key);
        else this.r.evictsFailed++;
      }),
    );
  }

  /** Close and evict everything still held, retrying for a while. */
  async finish(): Promise<void> {
    const long = this.longLease;
    if (long?.start !== undefined) await this.checkLease(long.lease, long.start, long.acked, long.unclear, long.members, 1);
    if (this.longContext) this.open.push({ lifetime: this.longContext, members: [] });
    if (long) this.open.push({ lifetime: long.lease, members: [] });
    const until = Date.now() + 60_000;
    while ((this.held.size > 0 || this.open.length > 0) && Date.now() < until) {
      await this.evictSome(200);
      for (const held of this.open.splice(0)) {
        const r = await this.log.run('batches', 'close', () => held.lifetime.close(), slotOfLifetime(this.store, held.lifetime.id));
        if (!r.ok) this.open.push(held);
      }
      if (this.held.size > 0 || this.open.length > 0) await sleep(500);
    }
    this.r.lifetimesLeftOpen = this.open.length;
    this.r.keysLeftBehind = this.held.size;
  }

  report(): BatchesReport {
    return { ...this.r };
  }
}
