/**
 * LeaseLifetime: objects that live until a lease ends (ProxyStore's
 * `LeaseLifetime`). The lease is a Redis key TTL on every member and on the
 * lifetime's own keys, computed from the server's clock: they vanish at the
 * lease end even if every client is gone, and no client timer is needed.
 *
 * @module
 */
import { InvalidOptionsError, LifetimeEndedError, ProxyStoreError, withMessage } from '../errors.js';
import { randomId } from '../keys.js';
import { outcomeUnknown } from '../redis/faults.js';
import { MAX_EXPIRY_MS, MAX_EXPIRY_SECONDS, checkNumber } from '../options.js';
import type { Store } from '../store.js';
import { endedTtlMs, log, type ExpirySpec, type LifetimeKind } from './base.js';
import { ContextLifetime, attachedOptions, readForAttach, type LifetimeOptions } from './context.js';

/** An expiry: seconds (a number, as ProxyStore's float) or an absolute `Date`. */
export type Expiry = number | Date;

/** Options of {@link LeaseLifetime}. */
export interface LeaseLifetimeOptions extends LifetimeOptions {
  /** When the lease ends: in this many seconds, or at this Date. Now or earlier: the lifetime is born ended. */
  expiry: Expiry;
}

function toMs(expiry: unknown, what: string): { relative: boolean; ms: number } {
  if (expiry instanceof Date) {
    const ms = expiry.getTime();
    if (!Number.isFinite(ms)) throw new InvalidOptionsError(`${what} is an invalid Date`);
    // A range Redis can hold (see MAX_EXPIRY_MS); a past Date ends the lease at once.
    if (ms < 0 || ms > MAX_EXPIRY_MS) {
      throw new InvalidOptionsError(`${what} must be a Date from 1970 to ${new Date(MAX_EXPIRY_MS).toISOString()}, got ${expiry.toISOString()}`);
    }
    return { relative: false, ms };
  }
  if (typeof expiry === 'number' && Number.isFinite(expiry)) {
    checkNumber(`${what} (seconds)`, expiry, { unit: 'seconds', min: -MAX_EXPIRY_SECONDS, max: MAX_EXPIRY_SECONDS });
    return { relative: true, ms: Math.round(expiry * 1000) };
  }
  throw new InvalidOptionsError(`${what} must be a number of seconds or a Date, got ${String(expiry)}`);
}

/**
 * Objects associated with this lifetime are evicted when its lease ends, by
 * Redis itself; `extend` moves the lease, `close` ends it early.
 *
 * @example
 * ```ts
 * const lifetime = new LeaseLifetime(store, { expiry: 10 });
 * const key = await store.put('value', { lifetime });
 * await lifetime.extend(5); // the lease now ends 15 s after creation
 * // ... 15 s later, in any process:
 * await lifetime.done(); // true
 * await store.exists(key); // false
 * ```
 */
export class LeaseLifetime extends ContextLifetime {
  constructor(store: Store, options: LeaseLifetimeOptions) {
    super(store, options);
  }

  /**
   * A handle on an existing lease (see {@link ContextLifetime.attach}).
   *
   * @throws {@link InvalidOptionsError} when the lifetime has no lease.
   * @example
   * ```ts
   * const lease = await LeaseLifetime.attach(store, id);
   * await lease.extend(30);
   * ```
   */
  static override async attach(store: Store, id: string): Promise<LeaseLifetime> {
    const attached = await readForAttach(store, id, 'LeaseLifetime');
    if (!attached.ended && attached.kind !== 'lease') {
      throw new InvalidOptionsError(`lifetime ${id} is a ${attached.kind ?? 'unknown'} lifetime, not a lease: use ContextLifetime.attach`, {
        lifetime: id,
      });
    }
    return new LeaseLifetime(store, attachedOptions<LeaseLifetimeOptions>(attached));
  }

  /** @internal The option names the constructor takes. */
  protected override get optionNames(): readonly string[] {
    return ['name', 'expiry'];
  }

  /** @internal */
  protected override creation(options: LeaseLifetimeOptions): { kind: LifetimeKind; expiry: ExpirySpec } {
    if (typeof options !== 'object' || options === null || !('expiry' in options)) {
      throw new InvalidOptionsError('LeaseLifetime needs { expiry }: seconds (a number) or a Date');
    }
    const { relative, ms } = toMs(options.expiry, 'LeaseLifetime expiry');
    return { kind: 'lease', expiry: { mode: relative ? 'in' : 'at', ms } };
  }

  /**
   * Move the lease end: `extend(seconds)` adds to the current end,
   * `extend(date)` sets it, even earlier (as ProxyStore). Every member, and
   * every object added later, gets the new end as its Redis expiry. An end
   * that is not in the future closes the lifetime now.
   *
   * The relative end is fixed once, by the server, at the first step: a
   * resend (a lost reply, a Redis Cluster that reconfigures) is applied
   * once, and so is the same `extend` called again on this handle after it
   * failed having moved the lease end, or possibly so (its error says which).
   *
   * @throws {@link LifetimeEndedError} when the lifetime has ended.
   * @example
   * ```ts
   * await lease.extend(60);                                // one more minute
   * await lease.extend(new Date(Date.now() + 5 * 60_000)); // ends in 5 minutes
   * ```
   */
  async extend(expiry: Expiry): Promise<void> {
    const { relative, ms } = toMs(expiry, 'extend');
    this.check(this.store, 'extend');
    const mode = relative ? 'add' : 'at';
    // The same call again after a failure that may have applied it: its token.
    const retry = this.unfinished?.mode === mode && this.unfinished.ms === ms ? this.unfinished : undefined;
    const token = retry?.token ?? randomId();
    const progress: { applied?: number } = {};
    let result: { expiresAtMs: number; ended: boolean };
    try {
      result = await this.guard(() => this.record.extend(mode, ms, endedTtlMs(this.store), token, progress));
    } catch (err) {
      this.unfinished = undefined;
      if (!(err instanceof ProxyStoreError) || err instanceof LifetimeEndedError) throw err;
      const shown = typeof expiry === 'number' ? String(expiry) : 'the same Date';
      if (progress.applied !== undefined) {
        // The lease end moved; the walk over the members did not finish.
        this.unfinished = { mode, ms, token };
        throw withMessage(
          err,
          ` The lease end already moved (to ${new Date(progress.applied).toISOString()}), but some members may still carry the old one: ` +
            `call extend(${shown}) again on this handle to finish; it is not applied twice.`,
        );
      }
      if (outcomeUnknown(err)) {
        this.unfinished = { mode, ms, token };
        throw withMessage(err, ` The extend may have been applied: calling extend(${shown}) again on this handle applies it at most once.`);
      }
      throw err;
    }
    this.unfinished = undefined;
    if (result.ended) this.ended = true;
    log('extended %s to %s%s', this.id, new Date(result.expiresAtMs).toISOString(), result.ended ? ' (ended it)' : '');
  }

  /** An extend that failed after (or maybe after) moving the lease end: its call, to apply once if called again. */
  private unfinished: { mode: 'add' | 'at'; ms: number; token: string } | undefined;
}
