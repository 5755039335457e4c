/**
 * Ownership workload (one worker's part): the worker owns a few objects and runs several loops
 * that borrow or mutably borrow them at random, hold the borrow a moment, append an id to the
 * object's log through the mutable ones (update), and release. Measured:
 *
 * - every held borrow's interval, between client-side timestamps taken after the grant arrived
 *   and before the release was sent (so inner bounds of the real holding time): a mutable
 *   borrow overlapping any other borrow of the same object breaks the rules. Counted are the
 *   borrows whose release was acknowledged, and those whose release Redis refused as unknown
 *   long before their lease could have run out: their grant was undone (a stale master granted
 *   it), but the holder acted on it all the same;
 * - acknowledged releases that Redis later undoes (the borrow's lease shows up again: checked
 *   every 250 ms for a lease TTL after each release, and at the end);
 * - acknowledged updates missing from the object's final log;
 * - owners that vanish, and drops blocked by a borrow nobody holds.
 */
import {
  BorrowedError,
  MutableBorrowError,
  ReferenceInvalidError,
  borrow,
  drop,
  getKey,
  mutBorrow,
  release,
  resolve,
  update,
  type OwnedProxy,
  type RefMutProxy,
  type RefProxy,
  type Store,
} from '../../../src/index.js';
import type { Cluster, Redis } from 'ioredis';
import { handleToken, leaseAlive, slotOfKey } from '../harness/inspect.js';
import { isUnclear, type OpLog } from '../harness/ops.js';
import type { OwnershipReport, WorkerConfig } from '../harness/protocol.js';

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

interface Doc {
  log: number[];
}

interface Interval {
  mut: boolean;
  acquiredAt: number;
  releasedAt: number;
  outcome: 'acked' | 'undone';
}

interface Owned {
  owned: OwnedProxy<Doc>;
  key: string;
  slot: number;
  lost: boolean;
  held: Interval[];
  acked: Set<number>;
  unclear: Set<number>;
}

export class OwnershipWorkload {
  private readonly objects: Owned[] = [];
  /** Every object ever owned (lost ones are replaced, and checked at the end too). */
  private readonly all: Owned[] = [];
  private readonly recentReleases: { obj: Owned; token: string; at: number }[] = [];
  private readonly lostReleaseTokens = new Set<string>();
  private seq = 0;
  private readonly r: OwnershipReport = {
    objects: 0,
    grantedShared: 0,
    grantedMut: 0,
    refusedBusy: 0,
    overlaps: 0,
    objectsWithOverlap: 0,
    sharedOverlaps: 0,
    overlapSamples: [],
    releasesAcked: 0,
    releasesLapsed: 0,
    grantsUndone: 0,
    releasesFailed: 0,
    lostReleases: 0,
    updatesAcked: 0,
    updatesUnclear: 0,
    lostUpdates: 0,
    unclearApplied: 0,
    ownersLost: 0,
    dropsBlocked: 0,
    dropsFailed: 0,
  };

  constructor(
    private readonly store: Store,
    private readonly log: OpLog,
    private readonly audit: Redis | Cluster,
    private readonly config: WorkerConfig,
  ) {}

  /** Create the owned objects (before any fault: a failure here is the harness's). */
  async setup(): Promise<void> {
    for (let i = 0; i < this.config.objects; i++) await this.addObject();
  }

  private async addObject(): Promise<Owned | undefined> {
    const r = await this.log.run('ownership', 'ownedProxy', () => this.store.ownedProxy<Doc>({ log: [] }), (o) =>
      o === undefined ? undefined : slotOfKey(this.store, getKey(o)),
    );
    if (!r.ok) return undefined;
    const key = getKey(r.value);
    const obj: Owned = { owned: r.value, key, slot: slotOfKey(this.store, key), lost: false, held: [], acked: new Set(), unclear: new Set() };
    this.objects.push(obj);
    this.all.push(obj);
    return obj;
  }

  hotSlots(): number[] {
    return this.objects.map((o) => o.slot);
  }

  loops(running: () => boolean): Promise<void>[] {
    const borrowers = Array.from({ length: this.config.borrowers }, () => this.borrowLoop(running));
    return [...borrowers, this.auditLoop(running)];
  }

  private async borrowLoop(running: () => boolean): Promise<void> {
    while (running()) {
      const live = this.objects.filter((o) => !o.lost);
      if (live.length < this.config.objects) await this.addObject();
      const obj = live[Math.floor(Math.random() * live.length)];
      if (obj) await this.step(obj);
      await sleep(this.config.paceMs + Math.random() * 5);
    }
  }

  private async step(obj: Owned): Promise<void> {
    const mut = Math.random() < 0.5;
    const granted = await this.log.run<RefProxy<Doc> | RefMutProxy<Doc>>(
      'ownership',
      mut ? 'mutBorrow' : 'borrow',
      // Not populated from the owner's local target: each borrow reads the object from Redis,
      // so a lost update is not written back by a later one that kept it in memory.
      () => (mut ? mutBorrow(obj.owned, { populateTarget: false }) : borrow(obj.owned, { populateTarget: false })),
      obj.slot,
      { onLate: (late) => void release(late).catch(() => undefined), refusal: (e) => e instanceof MutableBorrowError },
    );
    if (!granted.ok) {
      if (granted.error instanceof MutableBorrowError) {
        this.r.refusedBusy++;
      } else if (granted.error instanceof ReferenceInvalidError) {
        // The owner itself is gone (its lease ended, or its object was evicted).
        this.markLost(obj);
      } else {
        await sleep(50);
      }
      return;
    }
    const handle = granted.value;
    const token = handleToken(handle) as string;
    const acquiredAt = Date.now();
    if (mut) this.r.grantedMut++;
    else this.r.grantedShared++;
    const value = await this.log.run('ownership', 'resolve', () => resolve(handle), obj.slot);
    if (mut && value.ok) {
      const uid = ++this.seq;
      value.value.log.push(uid);
      const u = await this.log.run('ownership', 'update', () => update(handle as RefMutProxy<Doc>), obj.slot);
      if (u.ok) {
        obj.acked.add(uid);
        this.r.updatesAcked++;
      } else if (isUnclear(u.error)) {
        obj.unclear.add(uid);
        this.r.updatesUnclear++;
      }
    }
    await sleep(Math.random() * 8);
    const releasedAt = Date.now();
    const outcome = await this.releaseWithRetry(handle, obj.slot);
    if (outcome === 'acked') {
      obj.held.push({ mut, acquiredAt, releasedAt, outcome });
      this.r.releasesAcked++;
      this.recentReleases.push({ obj, token, at: Date.now() });
    } else if (outcome === 'lapsed') {
      // Refused as unknown: a lease that may have run out (the holder took that long), or a
      // grant that Redis no longer knows although its lease cannot have ended yet.
      if (Date.now() - acquiredAt < this.config.leaseTtl * 1000 - 1_000) {
        this.r.grantsUndone++;
        obj.held.push({ mut, acquiredAt, releasedAt, outcome: 'undone' });
      } else {
        this.r.releasesLapsed++;
      }
    } else {
      this.r.releasesFailed++;
    }
  }

  /** Release, retrying unclear failures like an application would. */
  private async releaseWithRetry(handle: RefProxy<Doc> | RefMutProxy<Doc>, slot: number): Promise<'acked' | 'lapsed' | 'failed'> {
    const started = Date.now();
    let unclearBefore = false;
    for (let backoff = 100; ; backoff = Math.min(2 * backoff, 2_000)) {
      const r = await this.log.run('ownership', 'release', () => release(handle), slot);
      if (r.ok) return 'acked';
      // After an unclear attempt, "already released" may be that attempt's own doing.
      if (r.error instanceof ReferenceInvalidError) return unclearBefore ? 'acked' : 'lapsed';
      if (!isUnclear(r.error) || Date.now() - started > this.config.retryMs) return 'failed';
      unclearBefore = true;
      await sleep(backoff);
    }
  }

  private markLost(obj: Owned): void {
    if (obj.lost) return;
    obj.lost = true;
    this.r.ownersLost++;
    const i = this.objects.indexOf(obj);
    if (i >= 0) this.objects.splice(i, 1);
  }

  /** Look for acknowledged releases whose lease came back (an undone release). */
  private async auditReleases(all = false): Promise<void> {
    const horizon = Date.now() - (this.config.leaseTtl * 1000 + 2_000);
    while (this.recentReleases.length > 0 && this.recentReleases[0]!.at < horizon) this.recentReleases.shift();
    const toCheck = all ? this.recentReleases : this.recentReleases.filter((r) => !this.lostReleaseTokens.has(r.token));
    await Promise.all(
      toCheck.map(async ({ obj, token }) => {
        if (this.lostReleaseTokens.has(token)) return;
        try {
          if (await leaseAlive(this.audit, this.store, obj.key, token)) this.lostReleaseTokens.add(token);
        } catch {
          // the audit itself may fail during a fault; the next round retries
        }
      }),
    );
  }

  private async auditLoop(running: () => boolean): Promise<void> {
    while (running()) {
      await this.auditReleases();
      await sleep(250);
    }
  }

  /** After the loops ended: audit, read the final logs, compute overlaps, drop every owner. */
  async finish(): Promise<void> {
    await this.auditReleases(true);
    this.r.lostReleases = this.lostReleaseTokens.size;
    for (const obj of this.all) {
      this.countOverlaps(obj);
      if (obj.lost) continue;
      const final = await this.readFinal(obj);
      if (final === undefined) {
        this.markLost(obj);
        continue;
      }
      const present = new Set(final.log);
      for (const uid of obj.acked) if (!present.has(uid)) this.r.lostUpdates++;
      for (const uid of obj.unclear) if (present.has(uid)) this.r.unclearApplied++;
    }
    this.r.objects = this.all.length;
    await Promise.all(this.all.filter((o) => !o.lost).map((o) => this.dropOwner(o)));
  }

  private async readFinal(obj: Owned): Promise<Doc | undefined> {
    for (let i = 0; i < 20; i++) {
      const r = await this.log.run('ownership', 'get', () => this.store.get<Doc>(obj.key), obj.slot);
      if (r.ok) return r.value;
      await sleep(500);
    }
    return undefined;
  }

  private countOverlaps(obj: Owned): void {
    const held = obj.held;
    let found = false;
    for (let i = 0; i < held.length; i++) {
      for (let j = i + 1; j < held.length; j++) {
        const a = held[i]!;
        const b = held[j]!;
        if (!(a.acquiredAt < b.releasedAt && b.acquiredAt < a.releasedAt)) continue;
        if (a.mut || b.mut) {
          this.r.overlaps++;
          found = true;
          if (this.r.overlapSamples.length < 5) {
            const show = (x: Interval) => `${x.mut ? 'mut' : 'shared'}${x.outcome === 'undone' ? ' (grant undone)' : ''} ${x.acquiredAt}-${x.releasedAt}`;
            this.r.overlapSamples.push(`${obj.key}: ${show(a)} / ${show(b)}`);
          }
        } else {
          this.r.sharedOverlaps++;
        }
      }
    }
    if (found) this.r.objectsWithOverlap++;
  }

  /** Drop, waiting out a lingering borrow (at most a lease TTL and a margin). */
  private async dropOwner(obj: Owned): Promise<void> {
    const until = Date.now() + this.config.leaseTtl * 1000 + 10_000;
    let blocked = false;
    for (;;) {
      const r = await this.log.run('ownership', 'drop', () => drop(obj.owned), obj.slot);
      if (r.ok) return;
      if (r.error instanceof ReferenceInvalidError) {
        this.markLost(obj);
        return;
      }
      if (r.error instanceof BorrowedError && !blocked) {
        blocked = true;
        this.r.dropsBlocked++;
      }
      if (Date.now() > until) {
        this.r.dropsFailed++;
        return;
      }
      await sleep(500);
    }
  }

  report(): OwnershipReport {
    return { ...this.r };
  }
}
