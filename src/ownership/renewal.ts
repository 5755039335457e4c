/**
 * The heartbeat that keeps this process's handles alive.
 *
 * Every handle (owner or borrow) has a lease in Redis that ends `leaseTtl`
 * after its last renewal, so a process that dies, is SIGKILLed or frozen
 * stops blocking others within `leaseTtl`. One `Renewal` per Store renews
 * every handle this store serves here, every `leaseTtl / 3`, in one round
 * trip: one `renew` script call per handle, all sent at once without waiting
 * for replies (pipelined on the wire, not in an ioredis `pipeline()`, which
 * on Redis Cluster refuses keys of several slots; a Cluster client routes
 * each call to its node). Its timer is `unref()`ed, so renewing never keeps
 * a finished process alive.
 *
 * Moves: a handle sent away with `toRef` stays in the sender's renewal in
 * *transit* mode, so a ref waiting in a queue does not expire. The receiver
 * claims it on `fromRef` (a `renew` in *hold* mode records the receiver as
 * the holder), and the sender's next transit renewal sees another holder and
 * stops. Each renewal is identified by a random `holder` id, so two stores in
 * one process (or two worker threads) are two holders.
 *
 * @module
 */
import createDebug from 'debug';
import { randomId } from '../keys.js';
import type { ProxyState } from '../proxy/proxy.js';
import type { Store } from '../store.js';
import { unwatch } from './finalizer.js';
import { invalidate, leaseMs, objectKeys, type HandleKind, type HandleState, type InvalidCause } from './handle.js';
import { renewalRetryDelay } from '../redis/retry.js';

const log = createDebug('proxystore:ownership');

/** `hold`: this process has the handle. `transit`: it sent the handle away, not yet claimed. */
export type RenewalMode = 'hold' | 'transit';

interface Entry {
  readonly kind: HandleKind;
  readonly key: string;
  readonly mode: RenewalMode;
  /** A borrow's grant number (fencing: see lua/includes/fence.lua); 0 for an owner. */
  readonly grant: number;
  /**
   * The states of the handles that hold the token here (usually one; two
   * when a ref was revived twice); never keeps a proxy alive. The token ends
   * by garbage collection only once all of them are collected.
   */
  readonly states: readonly WeakRef<ProxyState>[];
}

/** The states of an entry that are still alive. */
function liveStates(entry: Entry | undefined): ProxyState[] {
  return (entry?.states ?? []).flatMap((ref) => {
    const state = ref.deref();
    return state ? [state] : [];
  });
}

const renewals = new WeakMap<Store, Renewal>();

/** The renewal of a store's handles in this process (created on first use). */
export function renewalOf(store: Store): Renewal {
  let renewal = renewals.get(store);
  if (!renewal) {
    const created = new Renewal(store);
    renewals.set(store, created);
    store.onClose(() => created.close());
    renewal = created;
  }
  return renewal;
}

/** Renews the leases of the handles one store serves in this process. */
export class Renewal {
  /** Identifies this renewal as the holder of its handles in Redis. */
  readonly holder = randomId();
  /** Lease length, in milliseconds. */
  readonly ttlMs: number;
  private readonly entries = new Map<string, Entry>();
  private timer: NodeJS.Timeout | undefined;
  /** A tick sooner than the next period, after one that failed (see {@link retrySoon}). */
  private retryTimer: NodeJS.Timeout | undefined;
  /** The delay of the next retry after a failed tick; undefined after a tick that went through. */
  private retryDelayMs: number | undefined;
  private ticking = false;
  private closed = false;

  constructor(readonly store: Store) {
    this.ttlMs = leaseMs(store);
    store.connector.client.on('ready', this.onReady);
  }

  /** The mode in which a token is renewed here, if it is. */
  modeOf(token: string): RenewalMode | undefined {
    return this.entries.get(token)?.mode;
  }

  /** Renew a handle this process holds (another proxy of the same token here keeps its place). */
  hold(state: HandleState): void {
    const e = this.entries.get(state.token);
    const others = e?.mode === 'hold' ? liveStates(e).filter((s) => s !== state) : [];
    this.entries.set(state.token, {
      kind: state.kind as HandleKind,
      key: state.key,
      grant: state.grant ?? 0,
      mode: 'hold',
      states: [...others.map((s) => new WeakRef(s)), new WeakRef(state)],
    });
    this.ensureTimer();
  }

  /** The handle was sent away: renew it until a receiver claims it. */
  send(token: string): void {
    const e = this.entries.get(token);
    if (e) this.entries.set(token, { kind: e.kind, key: e.key, grant: e.grant, mode: 'transit', states: [] });
  }

  /**
   * Renew at once when the client (re)connects: after an outage the leases
   * of this process's handles may have ended by the clock, and the first
   * script on each object grants them `leaseTtl` more (see
   * lua/includes/purgeLeases.lua); this renewal is what keeps them.
   */
  private readonly onReady = (): void => void this.tick();

  /** Stop renewing a token (its handle ended). */
  private forget(token: string): void {
    this.entries.delete(token);
    if (this.entries.size === 0) this.stopTimer();
  }

  /**
   * The token ended (released, dropped): stop renewing it, and invalidate
   * the handle that holds it here, which may be another proxy than the one
   * the caller ended (a ref revived in the same process).
   */
  end(token: string, reason: string, cause?: InvalidCause): void {
    const entry = this.entries.get(token);
    this.forget(token);
    this.lapsed(entry, reason, cause);
  }

  private ensureTimer(): void {
    if (this.timer || this.closed || this.entries.size === 0) return;
    this.timer = setInterval(() => void this.tick(), Math.max(1, Math.floor(this.ttlMs / 3)));
    this.timer.unref();
  }

  private stopTimer(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    if (this.retryTimer) clearTimeout(this.retryTimer);
    this.retryTimer = undefined;
    this.retryDelayMs = undefined;
  }

  /**
   * A tick failed for some handles (Redis unreachable, a failover, a slot
   * migrating): try again after `leaseTtl / 10`, then twice as long each
   * time, up to the renewal period, instead of waiting a whole period (a
   * lease would then have a third of its length left when the next try came).
   */
  private retrySoon(): void {
    if (this.closed || this.entries.size === 0) return;
    const delay = renewalRetryDelay(this.ttlMs, this.retryDelayMs);
    this.retryDelayMs = delay;
    if (this.retryTimer) clearTimeout(this.retryTimer);
    this.retryTimer = setTimeout(() => {
      this.retryTimer = undefined;
      void this.tick();
    }, delay);
    this.retryTimer.unref();
  }

  /** @internal For tests: the delay of the retry scheduled after a failed tick, if any. */
  get retryScheduledMs(): number | undefined {
    return this.retryTimer ? this.retryDelayMs : undefined;
  }

  /**
   * Claim a handle just revived here: renew it at once in hold mode, so its
   * sender stops renewing it even if this process dies before its first tick.
   * The command is queued synchronously, so any later command about the
   * handle from this process reaches Redis after it.
   */
  claim(state: HandleState): void {
    const entry = this.entries.get(state.token);
    this.store.connector.scripts
      .run('renew', objectKeys(this.store, state.key), { token: state.token, holder: this.holder, ttlMs: this.ttlMs, mode: 'hold' })
      .then(
        (code) => {
          if ((code === 0 || code === 3) && this.entries.get(state.token) === entry) {
            this.entries.delete(state.token);
            if (code === 3) this.lapsed(entry, 'the lifetime of its object ended before it was revived here', 'lifetime');
            else this.lapsed(entry, 'its lease had ended (or it was released) before it was revived here');
          }
        },
        (err: unknown) => log('claim of %s failed: %O', state.key, err),
      );
  }

  private lapsed(entry: Entry | undefined, reason: string, cause?: InvalidCause): void {
    for (const state of liveStates(entry)) {
      unwatch(state);
      invalidate(state, reason, cause);
    }
  }

  /** Renew every handle once, in one round trip. */
  async tick(): Promise<void> {
    if (this.ticking || this.closed || this.entries.size === 0) return;
    this.ticking = true;
    const batch = [...this.entries];
    const { scripts } = this.store.connector;
    const results = await Promise.allSettled(
      batch.map(([token, e]) =>
        scripts.run('renew', objectKeys(this.store, e.key), { token, holder: this.holder, ttlMs: this.ttlMs, mode: e.mode }),
      ),
    );
    this.ticking = false;
    let failed = false;
    const lapsedNow: Entry[] = [];
    batch.forEach(([token, e], i) => {
      const result = results[i] as PromiseSettledResult<0 | 1 | 2 | 3>;
      if (result.status === 'rejected') {
        failed = true;
        return log('renewal of %s failed: %O', e.key, result.reason);
      }
      const code = result.value;
      // Skip entries that changed while the renewal was in flight.
      if (code === 1 || this.entries.get(token) !== e) return;
      this.entries.delete(token);
      // 2: a receiver claimed a handle we sent; 0: the handle is gone; 3: its object's lifetime ended the owner.
      if (code === 0) lapsedNow.push(e);
      if (code === 3) this.lapsed(e, 'the lifetime of its object ended (closed, or its lease ran out)', 'lifetime');
    });
    // Gone: ended by its lease, by another holder, or with Redis's data (one check per master).
    if (lapsedNow.length > 0) {
      const losses = await this.store.connector.dataLostMany(
        lapsedNow.map((e) => e.key),
        'a renewal found its lease gone',
      );
      lapsedNow.forEach((e, i) => {
        const lost = losses[i];
        if (lost) this.lapsed(e, lost.message, 'dataLost');
        else this.lapsed(e, 'its lease ended, or another holder of its token released or dropped it');
      });
    }
    if (this.entries.size === 0) this.stopTimer();
    else if (failed) this.retrySoon();
    else this.retryDelayMs = undefined;
  }

  /**
   * The finalizer's end of a handle whose proxy was garbage collected while
   * held here: release a borrow; drop an owner, or, when it is borrowed,
   * leave the object to be evicted when its last borrow ends.
   */
  async collected(token: string, kind: HandleKind, key: string): Promise<void> {
    const e = this.entries.get(token);
    // Only when no proxy that holds the token here is left: a collected
    // duplicate (a ref revived twice) must not end the handle another
    // reachable proxy still uses.
    if (this.closed || !e || e.mode !== 'hold' || liveStates(e).length > 0) return;
    this.forget(token);
    const keys = objectKeys(this.store, key);
    try {
      if (kind === 'owned') await this.store.connector.scripts.run('abandon', keys, { owner: token, call: randomId() }, { key });
      else await this.store.connector.scripts.run('release', keys, { key, token, call: randomId(), grant: e.grant }, { key });
    } catch (err) {
      log('finalizer of %s %s failed: %O', kind, key, err);
    }
  }

  /**
   * The store is closing: stop renewing, and end every handle held here in
   * one round trip (borrows released, owners dropped or, when borrowed,
   * orphaned). Handles in transit are left to their receivers.
   */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.stopTimer();
    this.store.connector.client.off('ready', this.onReady);
    const held = [...this.entries].filter(([, e]) => e.mode === 'hold');
    this.entries.clear();
    if (held.length === 0) return;
    const { scripts } = this.store.connector;
    const ended = held.map(([token, e]) => {
      for (const state of liveStates(e)) {
        unwatch(state);
        invalidate(state, `its store ${this.store.name} was closed`);
      }
      const keys = objectKeys(this.store, e.key);
      return e.kind === 'owned'
        ? scripts.run('abandon', keys, { owner: token, call: randomId() })
        : scripts.run('release', keys, { key: e.key, token, call: randomId(), grant: e.grant });
    });
    // A failure (a borrow already released elsewhere, Redis gone) only means
    // that handle's lease runs out by itself.
    for (const result of await Promise.allSettled(ended)) {
      if (result.status === 'rejected') log('ending a handle at close failed: %O', result.reason);
    }
  }
}
