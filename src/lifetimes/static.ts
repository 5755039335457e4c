/**
 * StaticLifetime: objects that live as long as the process that made them
 * (ProxyStore's `StaticLifetime`, a process singleton).
 *
 * ProxyStore evicts them from an `atexit` handler. Node has no exit hook that
 * can do I/O, and nothing runs on SIGKILL, so here the static lifetime is a
 * lease that a heartbeat renews while the process lives:
 *
 * - a normal end evicts the objects: SIGINT, SIGTERM, `beforeExit`, an
 *   explicit `close()`, or `store.close()` (for that store's objects);
 * - after `process.exit()`, a crash or SIGKILL the lease runs out, and the
 *   objects' keys expire 2 x `leaseTtl` after its end: 2.7 to 3 x `leaseTtl`
 *   after the process died.
 *
 * That margin is what lets the objects of a live process outlive a Redis
 * outage (Redis expires keys the moment it runs again, before any heartbeat
 * could renew them): the first script on a part whose lease end passed while
 * nothing touched it for more than half a lease gives it a fresh lease
 * (lua/includes/staticLapse.lua), and a part renews at once when its client
 * reconnects. See docs/lifetimes.md, "Static lifetime".
 *
 * Objects belong to stores (each with its own Redis and namespace), so the
 * singleton keeps one lease-renewed Redis lifetime per store: a "part".
 *
 * @module
 */
import type { PutValue } from '../chunks/put.js';
import { inspect } from 'node:util';
import { InvalidOptionsError, LifetimeEndedError, StoreClosedError } from '../errors.js';
import { checkOptions } from '../options.js';
import { newKey, randomId } from '../keys.js';
import { Store, storeOfProxy } from '../store.js';
import { LifetimeRecord, closedHereError, endedTtlMs, log, splitAddKeyArgs, statesOf, type ObjectRules } from './base.js';
import { kLifetimeAddKeys, kLifetimeFuture, kLifetimeOwnedPut, kLifetimePut, type AddKeyArgs, type CloseOptions, type Lifetime, type NewOwner } from './lifetime.js';
import { renewalRetryDelay } from '../redis/retry.js';

/** How long a signal or `beforeExit` waits for the eviction before letting the process end anyway. */
const SHUTDOWN_GRACE_MS = 5_000;

/** The signals after which the objects are evicted. */
const SIGNALS = ['SIGINT', 'SIGTERM'] as const;

/**
 * What the static lifetime does on SIGINT and SIGTERM:
 *
 * - `'auto'` (default): if the application listens for that signal itself,
 *   nothing: the application drains and ends the process, and calls
 *   `await StaticLifetime.instance().close()` at the end of its drain to
 *   evict the static objects (otherwise `beforeExit` evicts them, or, after
 *   `process.exit()`, their lease runs out within `leaseTtl`). If nothing
 *   else listens, the objects are evicted and the signal raised again, so
 *   the process ends as it would have without the library.
 * - `'evict'`: evict at once on the signal, even while the application has
 *   its own listener (which then decides when the process ends).
 * - `'none'`: install no signal listener at all; the application calls
 *   `close()` when it is done (`beforeExit` still evicts).
 */
export type StaticSignals = 'auto' | 'evict' | 'none';

/** Options of {@link StaticLifetime.instance}. */
export interface StaticLifetimeOptions {
  /** How SIGINT and SIGTERM are handled (see {@link StaticSignals}). Default `'auto'`. */
  signals?: StaticSignals;
}

const SIGNAL_MODES: readonly StaticSignals[] = ['auto', 'evict', 'none'];

/** The part of the static lifetime that lives in one store. */
interface Part {
  readonly store: Store;
  readonly record: LifetimeRecord;
  readonly leaseMs: number;
  /** Settles when Redis has the part's lifetime. */
  readonly ready: Promise<void>;
  readonly heartbeat: NodeJS.Timeout;
  /** Renews at once when the client (re)connects, once the part exists (see {@link StaticLifetime.part}). */
  readonly onReady: () => void;
  created: boolean;
  renewing: Promise<void> | undefined;
  /** A renewal sooner than the next heartbeat, after one that failed. */
  retry: NodeJS.Timeout | undefined;
  /** The delay of that retry (leaseTtl / 10, doubled each time, up to the heartbeat period). */
  retryDelayMs: number | undefined;
}

const kSingleton: unique symbol = Symbol('proxystore-redis.static');

/** @internal Tests only: `StaticLifetime[kResetStatic]()` forgets the singleton, as ProxyStore's tests reset `_instance`. */
export const kResetStatic: unique symbol = Symbol('proxystore-redis.static.reset');

/**
 * Keeps its objects for the rest of the process. One per process:
 * `StaticLifetime.instance()`.
 *
 * The lease of each store's part is `leaseTtl` seconds (a Store option,
 * default 30), renewed every `leaseTtl / 3` by a timer that does not keep the
 * process alive; its keys expire 2 x `leaseTtl` after the lease end, so that
 * a Redis outage of up to about 2 x `leaseTtl` loses nothing of a live
 * process.
 *
 * @example
 * ```ts
 * const store = new Store('default', connector, { register: true });
 * const key = await store.put('value', { lifetime: StaticLifetime.instance() });
 * const proxy = await store.proxy('value', { lifetime: StaticLifetime.instance() });
 * // evicted on SIGINT/SIGTERM/beforeExit or store.close(); after SIGKILL, within 3 x leaseTtl
 * ```
 */
export class StaticLifetime implements Lifetime {
  private static current: StaticLifetime | undefined;

  /** A process-wide id; each store's part has its own Redis id ({@link StaticLifetime.idIn}). */
  readonly id = randomId();
  /** As ProxyStore's. */
  readonly name = 'static';
  private readonly parts = new Map<Store, Part>();
  /** Stores whose close already runs {@link release}. */
  private readonly hooked = new WeakSet<Store>();
  private ended = false;
  private closing: Promise<void> | undefined;
  private listening = false;
  private listeningToSignals = false;
  private signals: StaticSignals = 'auto';

  private constructor(token: typeof kSingleton) {
    if (token !== kSingleton) throw new InvalidOptionsError('StaticLifetime is a singleton: use StaticLifetime.instance()');
  }

  /**
   * The process's static lifetime. `options.signals` sets how it treats
   * SIGINT and SIGTERM (see {@link StaticSignals}); it applies to the
   * singleton from then on.
   *
   * @throws {@link InvalidOptionsError} for an unknown `signals` value.
   * @example
   * ```ts
   * StaticLifetime.instance() === StaticLifetime.instance(); // true
   *
   * // An application with its own graceful shutdown:
   * StaticLifetime.instance({ signals: 'none' });
   * process.on('SIGTERM', async () => {
   *   await server.drain();
   *   await StaticLifetime.instance().close(); // evicts the static objects
   *   process.exit(0);
   * });
   * ```
   */
  static instance(options?: StaticLifetimeOptions): StaticLifetime {
    StaticLifetime.current ??= new StaticLifetime(kSingleton);
    if (options !== undefined) StaticLifetime.current.configure(options);
    return StaticLifetime.current;
  }

  private configure(options: StaticLifetimeOptions): void {
    if (typeof options !== 'object' || options === null) throw new InvalidOptionsError('StaticLifetime.instance options must be an object');
    const { signals } = options;
    if (signals === undefined) return;
    if (!SIGNAL_MODES.includes(signals)) {
      throw new InvalidOptionsError(`StaticLifetime signals must be 'auto', 'evict' or 'none', got ${JSON.stringify(signals)}`);
    }
    this.signals = signals;
    // Already listening: follow the new mode at once.
    if (this.listening) this.listenToSignals(signals !== 'none');
  }

  /** @internal Forget the singleton and stop its timers and listeners (its objects are left to their leases). */
  static [kResetStatic](): void {
    const current = StaticLifetime.current;
    if (current) for (const part of [...current.parts.values()]) current.drop(part);
    current?.unlisten();
    StaticLifetime.current = undefined;
  }

  /** The Redis id of this lifetime's part in `store`, if it has one (for inspection). */
  idIn(store: Store): string | undefined {
    return this.parts.get(store)?.record.id;
  }

  private check(operation: string): void {
    if (this.ended) throw closedHereError(this.id, this.name, operation);
  }

  /** This lifetime's part in `store`, created (and its lease started) on first use. */
  private part(store: Store): Part {
    const existing = this.parts.get(store);
    if (existing) return existing;
    if (store.isClosed) throw new StoreClosedError(`store ${store.name} is closed: it cannot hold static objects`);
    const record = new LifetimeRecord(store.connector, randomId());
    const leaseMs = Math.max(1, Math.round(store.leaseTtl * 1000));
    const part: Part = {
      store,
      record,
      leaseMs,
      ready: record.create('static', `static lifetime of pid ${process.pid}`, { mode: 'in', ms: leaseMs }).then(() => {
        part.created = true;
        log('static lifetime of store %s is %s (lease %d ms)', store.name, record.id, leaseMs);
      }),
      // Renewal keeps the objects while the process lives; it must not keep the process alive.
      heartbeat: setInterval(() => this.renew(part), Math.max(1, Math.floor(leaseMs / 3))).unref(),
      // After an outage the lease may have ended by the clock: the part's keys
      // outlive it by a margin, and the first script on the part grants it a
      // fresh lease (lua/includes/staticLapse.lua); renewing at once on
      // reconnect keeps as much of that margin as possible. (The first
      // connection comes before the creation has run: nothing to renew then.)
      onReady: () => {
        if (part.created) this.renew(part);
      },
      created: false,
      renewing: undefined,
      retry: undefined,
      retryDelayMs: undefined,
    };
    store.connector.client.on('ready', part.onReady);
    part.ready.catch(() => this.drop(part));
    this.parts.set(store, part);
    if (!this.hooked.has(store)) {
      this.hooked.add(store);
      store.onClose(() => this.release(store));
    }
    this.listen();
    return part;
  }

  /** Forget a part (its objects are gone or will expire with its lease). */
  private drop(part: Part): void {
    clearInterval(part.heartbeat);
    if (part.retry) clearTimeout(part.retry);
    part.retry = undefined;
    part.store.connector.client.off('ready', part.onReady);
    if (this.parts.get(part.store) === part) this.parts.delete(part.store);
    if (this.parts.size === 0) this.unlisten();
  }

  private renew(part: Part): void {
    if (part.renewing || this.parts.get(part.store) !== part) return;
    part.renewing = part.ready
      .then(() => part.record.extend('in', part.leaseMs, endedTtlMs(part.store)))
      .then(
        (result) => {
          part.retryDelayMs = undefined;
          if (!result.ended) return;
          // Its lease ran out while the part was in use (its heartbeat had
          // stopped): extend closed it; the next static object starts a new part.
          log('static lifetime %s of store %s ran out of its lease and was closed', part.record.id, part.store.name);
          this.drop(part);
        },
        (err: unknown) => {
          if (err instanceof LifetimeEndedError) {
            // Redis no longer knows the part (silent for longer than its lease
            // and the outage margin, or closed): those objects are gone; the
            // next static object starts a new part.
            log('static lifetime %s of store %s lapsed: %s', part.record.id, part.store.name, err.message);
            this.drop(part);
          } else {
            log('renewing static lifetime %s of store %s failed (will retry): %s', part.record.id, part.store.name, String(err));
            this.retrySoon(part);
          }
        },
      )
      .finally(() => {
        part.renewing = undefined;
      });
  }

  /**
   * A renewal failed (Redis unreachable, a failover, a slot migrating): try
   * again after `leaseTtl / 10`, then twice as long each time, up to the
   * heartbeat period, rather than a whole period later.
   */
  private retrySoon(part: Part): void {
    if (this.parts.get(part.store) !== part) return;
    const delay = renewalRetryDelay(part.leaseMs, part.retryDelayMs);
    part.retryDelayMs = delay;
    if (part.retry) clearTimeout(part.retry);
    part.retry = setTimeout(() => {
      part.retry = undefined;
      this.renew(part);
    }, delay).unref();
  }

  /** @internal For tests: the delay of the renewal retry scheduled for `store`'s part, if any. */
  retryScheduledMs(store: Store): number | undefined {
    const part = this.parts.get(store);
    return part?.retry ? part.retryDelayMs : undefined;
  }

  /** Run `op` on the part of `store`; if Redis says the part's lease lapsed, once more on a new part. */
  private async withPart<T>(store: Store, op: (part: Part) => Promise<T>): Promise<T> {
    for (let attempt = 0; ; attempt++) {
      const part = this.part(store);
      await part.ready;
      try {
        return await op(part);
      } catch (err) {
        if (!(err instanceof LifetimeEndedError) || this.ended || attempt > 0 || this.parts.get(store) !== part) throw err;
        log('static lifetime %s of store %s lapsed; starting a new one', part.record.id, store.name);
        this.drop(part);
        // What is left of it is logically gone: evict it now rather than at its keys' expiry.
        void part.record.close(endedTtlMs(store)).catch((closeErr: unknown) => {
          log('closing lapsed static lifetime %s of store %s failed (its keys expire by themselves): %s', part.record.id, store.name, String(closeErr));
        });
      }
    }
  }

  /**
   * Associate existing keys of `store` with the static lifetime. The store is
   * required (ProxyStore's `store=` argument): `addKey(...keys, { store })`.
   *
   * @throws {@link InvalidOptionsError} without a store.
   * @example
   * ```ts
   * await StaticLifetime.instance().addKey(key, { store });
   * ```
   */
  async addKey(...keys: AddKeyArgs): Promise<void> {
    const split = splitAddKeyArgs(keys, this.id);
    if (split.store === undefined) {
      throw new InvalidOptionsError(
        'StaticLifetime.addKey requires the store parameter: call addKey(...keys, { store }) (its objects are evicted per store)',
        { lifetime: this.id },
      );
    }
    if (!(split.store instanceof Store)) throw new InvalidOptionsError('StaticLifetime.addKey: `store` must be a Store', { lifetime: this.id });
    await this[kLifetimeAddKeys](split.store, split.keys);
  }

  /**
   * Associate the objects of proxies with the static lifetime, each in the
   * store it comes from (found as resolving would find it).
   *
   * @throws {@link ProxyStoreFactoryError} for something that is not a store proxy.
   * @example
   * ```ts
   * await StaticLifetime.instance().addProxy(proxy);
   * ```
   */
  async addProxy(...proxies: unknown[]): Promise<void> {
    const states = statesOf(proxies, this.id);
    this.check('addProxy');
    const byStore = new Map<Store, string[]>();
    for (const state of states) {
      const store = storeOfProxy(state);
      byStore.set(store, [...(byStore.get(store) ?? []), state.key]);
    }
    await Promise.all([...byStore].map(([store, keys]) => this[kLifetimeAddKeys](store, keys)));
  }

  /** @internal */
  async [kLifetimeAddKeys](store: Store, keys: string[]): Promise<void> {
    this.check('addKey');
    if (keys.length === 0) return;
    await this.withPart(store, (part) => part.record.addKeys(keys));
  }

  /** @internal */
  async [kLifetimePut](store: Store, values: PutValue[], rules?: ObjectRules): Promise<string[]> {
    this.check('put');
    return this.withPart(store, async (part) => {
      // (A deduped put's values are bytes: putStream takes no dedupe.)
      if (rules?.dedupe) return part.record.putDeduped(values as Buffer[]);
      const keys = values.map(() => newKey(part.record.id));
      await part.record.put(keys, values, rules, store.chunkSize);
      return keys;
    });
  }

  /** @internal */
  async [kLifetimeFuture](store: Store): Promise<string> {
    this.check('future');
    return this.withPart(store, async (part) => {
      const key = newKey(part.record.id);
      await part.record.addFuture(key);
      return key;
    });
  }

  /** @internal */
  async [kLifetimeOwnedPut](store: Store, bytes: Buffer, owner: NewOwner): Promise<string> {
    this.check('ownedProxy');
    return this.withPart(store, async (part) => {
      const key = newKey(part.record.id);
      await part.record.ownedPut(key, bytes, owner, store.chunkSize);
      return key;
    });
  }

  /** Evict the static objects of one store (its close hook; also used by {@link close}). */
  private async release(store: Store): Promise<void> {
    const part = this.parts.get(store);
    if (!part) return;
    this.drop(part);
    await part.ready.catch(() => {});
    await part.renewing;
    const result = await part.record.close(endedTtlMs(store));
    log('released static lifetime %s of store %s: evicted %d object(s)', part.record.id, store.name, result.evicted);
  }

  /** Evict the static objects of every store; throws the first failure after trying all. */
  private async releaseAll(): Promise<Store[]> {
    const stores = [...this.parts.keys()];
    const results = await Promise.allSettled(stores.map((store) => this.release(store)));
    const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
    if (failed) throw failed.reason;
    return stores;
  }

  /**
   * End the static lifetime: evict its objects in every store. It cannot be
   * used again in this process (as ProxyStore: "only once"). With
   * `closeStores`, also closes those stores. Idempotent.
   *
   * @example
   * ```ts
   * await StaticLifetime.instance().close({ closeStores: true });
   * ```
   */
  async close(options: CloseOptions = {}): Promise<void> {
    checkOptions('StaticLifetime.close', options, ['closeStores']);
    this.ended = true;
    if (!this.closing) {
      const closing = this.releaseAll().then(async (stores) => {
        this.unlisten();
        if (options.closeStores) await Promise.all(stores.map((s) => s.close()));
      });
      this.closing = closing;
      // The parts are dropped even when their eviction fails (their leases then
      // clean up), so a later close() has nothing left to fail on.
      closing.catch(() => {
        if (this.closing === closing) this.closing = undefined;
      });
    }
    await this.closing;
  }

  /**
   * Whether the static lifetime has been closed in this process.
   *
   * @example
   * ```ts
   * await StaticLifetime.instance().done(); // false until close()
   * ```
   */
  async done(): Promise<boolean> {
    return this.ended;
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }

  /** `util.inspect` shows the process's static lifetime, never Redis state (it cannot await). */
  [inspect.custom](): string {
    return `StaticLifetime(id=${this.id}, stores=[${[...this.parts.keys()].map((s) => s.name).join(', ')}])`;
  }

  private readonly onBeforeExit = (): void => {
    void this.shutdown(undefined);
  };

  /** Listen for the normal ends of the process while there is something to evict. */
  private listen(): void {
    if (this.listening) return;
    this.listening = true;
    this.listenToSignals(this.signals !== 'none');
    process.on('beforeExit', this.onBeforeExit);
  }

  private listenToSignals(on: boolean): void {
    if (on === this.listeningToSignals) return;
    this.listeningToSignals = on;
    for (const signal of SIGNALS) {
      if (on) process.on(signal, this.onSignal);
      else process.off(signal, this.onSignal);
    }
  }

  private unlisten(): void {
    if (!this.listening) return;
    this.listening = false;
    this.listenToSignals(false);
    process.off('beforeExit', this.onBeforeExit);
  }

  /**
   * On a signal: in 'auto' mode, leave the end to the application if it
   * listens for the signal itself (it drains, then calls close() or exits);
   * otherwise evict now.
   */
  private readonly onSignal = (signal: NodeJS.Signals): void => {
    if (this.signals === 'auto' && process.listenerCount(signal) > 1) {
      log('%s: the application handles it; static objects stay until close(), beforeExit or their lease ends', signal);
      return;
    }
    void this.shutdown(signal);
  };

  /**
   * Evict everything, then let the process end as it would have without us:
   * re-raise the signal if no other listener wants it (a second Ctrl-C in the
   * meantime ends the process at once). Another listener of the signal decides
   * itself when the process ends.
   */
  private async shutdown(signal: NodeJS.Signals | undefined): Promise<void> {
    this.unlisten();
    // The eviction's I/O must finish even if nothing else holds the event loop
    // open, but a Redis that does not answer must not hold the process forever
    // (the leases clean up after it).
    let timer: NodeJS.Timeout | undefined;
    const grace = new Promise<void>((resolve) => {
      timer = setTimeout(resolve, SHUTDOWN_GRACE_MS);
    });
    try {
      await Promise.race([this.releaseAll(), grace]);
    } catch (err) {
      log('evicting static objects on %s failed: %s', signal ?? 'beforeExit', String(err));
    } finally {
      clearTimeout(timer);
    }
    if (signal !== undefined && process.listenerCount(signal) === 0) process.kill(process.pid, signal);
  }
}

