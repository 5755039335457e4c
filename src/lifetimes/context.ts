/**
 * ContextLifetime: objects that live until the lifetime is closed, by any
 * process (ProxyStore's `ContextLifetime`, kept in Redis).
 *
 * @module
 */
import type { PutValue } from '../chunks/put.js';
import { inspect } from 'node:util';
import { InvalidOptionsError, LifetimeEndedError, StoreClosedError } from '../errors.js';
import { newKey, randomId, validateLifetimeId } from '../keys.js';
import { checkOptions } from '../options.js';
import { Store } from '../store.js';
import {
  LifetimeRecord,
  closedHereError,
  endedTtlMs,
  log,
  splitAddKeyArgs,
  statesOf,
  type ExpirySpec,
  type LifetimeKind,
  type ObjectRules,
} from './base.js';
import { kLifetimeAddKeys, kLifetimeFuture, kLifetimeOwnedPut, kLifetimePut, type AddKeyArgs, type CloseOptions, type Lifetime, type NewOwner } from './lifetime.js';
import { trackOpen, untrackOpen } from './open.js';

/** The longest name kept in Redis (the lifetimeCreate script refuses longer ones). */
const MAX_NAME_BYTES = 1024;

/** Options of {@link ContextLifetime}. */
export interface LifetimeOptions {
  /** A name for humans, kept in Redis and shown in errors and logs. */
  name?: string;
}

/** Internal option of the constructor: a handle on an existing lifetime (attach). */
const kAttach: unique symbol = Symbol('proxystore-redis.lifetime.attach');
interface Attached {
  id: string;
  name: string | undefined;
  ended: boolean;
}

/** @internal The options `attach` passes to a lifetime constructor. */
export function attachedOptions<O>(attached: Attached): O {
  return { [kAttach]: attached } as O;
}

/** Read an existing lifetime for `attach`. */
export async function readForAttach(store: Store, id: string, cls: string): Promise<Attached & { kind: string | undefined }> {
  if (!(store instanceof Store)) throw new InvalidOptionsError(`${cls}.attach needs a Store`);
  validateLifetimeId(id);
  if (store.isClosed) throw new StoreClosedError(`store ${store.name} is closed: cannot attach lifetime ${id}`, { lifetime: id });
  const meta = await new LifetimeRecord(store.connector, id).read();
  return { id, name: meta.name, kind: meta.kind, ended: meta.state !== 'open' };
}

/**
 * Objects associated with this lifetime are evicted when it is closed. It
 * lives in Redis: another process can attach to it by id, add to it, see it
 * end, or close it.
 *
 * Creating one sends its creation to Redis at once; the first operation on
 * it waits for that reply ({@link ContextLifetime.waitUntilReady}).
 *
 * @example
 * ```ts
 * const lifetime = new ContextLifetime(store, { name: 'job-42' });
 * const key = await store.put('value', { lifetime });
 * const proxy = await store.proxy('value', { lifetime });
 * await lifetime.close();
 * await store.exists(key); // false
 * ```
 */
export class ContextLifetime implements Lifetime {
  /** The store whose objects this lifetime holds. */
  readonly store: Store;
  readonly id: string;
  /** The name given at creation (also kept in Redis), if any. */
  readonly name: string | undefined;
  /** @internal */
  protected readonly record: LifetimeRecord;
  /** @internal Settles when Redis has the lifetime (or refused it). */
  protected readonly created: Promise<void>;
  /** @internal Known to have ended (closed, or Redis said so): done() needs no round trip. */
  protected ended = false;
  /** @internal Closed through this handle: refuse adds without asking Redis. */
  protected closedHere = false;
  private closing: Promise<void> | undefined;

  constructor(store: Store, options: LifetimeOptions = {}) {
    const cls = new.target.name;
    if (!(store instanceof Store)) throw new InvalidOptionsError(`${cls} needs a Store as its first argument`);
    if (typeof options !== 'object' || options === null) throw new InvalidOptionsError(`${cls} options must be an object`);
    const attached = (options as { [kAttach]?: Attached })[kAttach];
    if (!attached) checkOptions(`new ${cls}`, options, this.optionNames);
    if (!attached && options.name !== undefined && typeof options.name !== 'string') {
      throw new InvalidOptionsError(`${cls} name must be a string, got ${typeof options.name}`);
    }
    this.store = store;
    this.id = attached?.id ?? randomId();
    this.name = attached ? attached.name : options.name || undefined;
    this.record = new LifetimeRecord(store.connector, this.id);
    if (attached) {
      this.ended = attached.ended;
      this.created = Promise.resolve();
      return;
    }
    if (store.isClosed) throw new StoreClosedError(`store ${store.name} is closed: cannot create a ${cls}`);
    if (this.name !== undefined && Buffer.byteLength(this.name) > MAX_NAME_BYTES) {
      throw new InvalidOptionsError(`${cls} name must be at most ${MAX_NAME_BYTES} bytes, got ${Buffer.byteLength(this.name)}`);
    }
    const { kind, expiry } = this.creation(options);
    // Until it is closed, the store's close closes it (./open.ts); a lease ends by itself.
    if (kind !== 'lease') trackOpen(store, this.id, this);
    this.created = this.record.create(kind, this.name, expiry).then(
      (reply) => {
        if (!reply.created) {
          this.ended = true;
          untrackOpen(store, this.id);
        }
        log('created %s %s%s', kind, this.id, reply.created ? '' : ' (already expired)');
      },
      (err: unknown) => {
        // Nothing was created (every script checks before it writes).
        untrackOpen(store, this.id);
        throw err;
      },
    );
    // Errors surface from the first operation that awaits `created`.
    this.created.catch(() => {});
  }

  /** @internal The option names the constructor takes. */
  protected get optionNames(): readonly string[] {
    return ['name'];
  }

  /**
   * Resolves (to the lifetime) once it exists in Redis: its creation is sent
   * at construction, and every operation on it waits for it. Await this
   * before handing `id` to another process, which would otherwise see an id
   * Redis does not know yet, that is, a lifetime that has ended.
   *
   * @example
   * ```ts
   * const lifetime = await new ContextLifetime(store).waitUntilReady();
   * worker.postMessage({ lifetimeId: lifetime.id });
   * ```
   */
  async waitUntilReady(): Promise<this> {
    await this.created;
    return this;
  }

  /**
   * A handle on an existing lifetime, e.g. in another process that got its
   * `id`: it can add to the lifetime, see it end (`done()`), and close it.
   * An id Redis does not know is a lifetime that has ended.
   *
   * @example
   * ```ts
   * // producer: send lifetime.id with the job
   * const lifetime = await ContextLifetime.attach(store, job.lifetimeId);
   * await store.put(result, { lifetime });
   * ```
   */
  static async attach(store: Store, id: string): Promise<ContextLifetime> {
    return new ContextLifetime(store, attachedOptions(await readForAttach(store, id, 'ContextLifetime')));
  }

  /** @internal What to create in Redis: overridden by LeaseLifetime. */
  protected creation(_options: LifetimeOptions): { kind: LifetimeKind; expiry: ExpirySpec } {
    return { kind: 'context', expiry: { mode: 'none' } };
  }

  /**
   * @internal Refuse locally what Redis would refuse anyway. Only a close
   * through this handle is taken as known: otherwise Redis refuses, with the
   * better message (when and how the lifetime ended).
   */
  protected check(store: Store, operation: string): void {
    if (this.closedHere) throw closedHereError(this.id, this.name, operation);
    if (store.namespace !== this.store.namespace) {
      throw new InvalidOptionsError(
        `lifetime ${this.id} belongs to store ${this.store.name} (namespace ${this.store.namespace}), not to store ${store.name} (namespace ${store.namespace}): a lifetime and its objects come from the same store`,
        { lifetime: this.id },
      );
    }
    if (this.store.isClosed) {
      throw new StoreClosedError(`store ${this.store.name} of lifetime ${this.id} is closed (${operation}): close lifetimes before their store`, {
        lifetime: this.id,
      });
    }
  }

  /** @internal Run a script call; remember when Redis says the lifetime has ended. */
  protected async guard<T>(call: () => Promise<T>): Promise<T> {
    await this.created;
    try {
      return await call();
    } catch (err) {
      if (err instanceof LifetimeEndedError) this.ended = true;
      throw err;
    }
  }

  /**
   * Associate existing objects with this lifetime (one round trip). Keys put
   * under another lifetime or none are fine ("foreign" members).
   *
   * @throws {@link LifetimeEndedError} when the lifetime has ended.
   * @example
   * ```ts
   * const key = await store.put('value');
   * await lifetime.addKey(key);
   * ```
   */
  async addKey(...keys: AddKeyArgs): Promise<void> {
    const split = splitAddKeyArgs(keys, this.id);
    await this[kLifetimeAddKeys](split.store ?? this.store, split.keys);
  }

  /**
   * Associate the objects of proxies with this lifetime (one round trip).
   *
   * @throws {@link ProxyStoreFactoryError} for something that is not a store proxy.
   * @throws {@link LifetimeEndedError} when the lifetime has ended.
   * @example
   * ```ts
   * const proxy = await store.proxy([1, 2, 3]);
   * await lifetime.addProxy(proxy);
   * ```
   */
  async addProxy(...proxies: unknown[]): Promise<void> {
    const states = statesOf(proxies, this.id);
    for (const state of states) {
      if (state.namespace !== this.store.namespace) {
        throw new InvalidOptionsError(
          `proxy of key ${state.key} belongs to namespace ${state.namespace}, but lifetime ${this.id} lives in namespace ${this.store.namespace}: a lifetime and its objects come from the same store`,
          { key: state.key, lifetime: this.id },
        );
      }
    }
    await this[kLifetimeAddKeys](this.store, states.map((s) => s.key));
  }

  /** @internal */
  async [kLifetimeAddKeys](store: Store, keys: string[]): Promise<void> {
    this.check(store, 'addKey');
    if (keys.length === 0) return;
    await this.guard(() => this.record.addKeys(keys));
    log('added %d key(s) to %s', keys.length, this.id);
  }

  /** @internal */
  async [kLifetimePut](store: Store, values: PutValue[], rules?: ObjectRules): Promise<string[]> {
    this.check(store, 'put');
    // (A deduped put's values are bytes: putStream takes no dedupe.)
    if (rules?.dedupe) return this.guard(() => this.record.putDeduped(values as Buffer[]));
    const keys = values.map(() => newKey(this.id));
    await this.guard(() => this.record.put(keys, values, rules, store.chunkSize));
    return keys;
  }

  /** @internal */
  async [kLifetimeFuture](store: Store): Promise<string> {
    this.check(store, 'future');
    const key = newKey(this.id);
    await this.guard(() => this.record.addFuture(key));
    return key;
  }

  /** @internal */
  async [kLifetimeOwnedPut](store: Store, bytes: Buffer, owner: NewOwner): Promise<string> {
    this.check(store, 'ownedProxy');
    const key = newKey(this.id);
    await this.guard(() => this.record.ownedPut(key, bytes, owner, store.chunkSize));
    return key;
  }

  /**
   * End the lifetime: evict every object associated with it and mark it
   * ended, in Redis, for every process. Idempotent, and safe to call from
   * several processes at once. With `closeStores`, closes the store after.
   *
   * @example
   * ```ts
   * await lifetime.close();
   * await lifetime.done(); // true
   * ```
   */
  async close(options: CloseOptions = {}): Promise<void> {
    checkOptions('lifetime.close', options, ['closeStores']);
    await this.closeOnce(false);
    if (options.closeStores) await this.store.close();
  }

  /** @internal The store is closing: close this lifetime first (./open.ts). */
  async closeForStore(): Promise<void> {
    await this.closeOnce(true);
  }

  private async closeOnce(storeClosing: boolean): Promise<void> {
    if (!this.closing) {
      const closing = (async () => {
        await this.created.catch(() => {});
        if (this.store.isClosed && !storeClosing) {
          throw new StoreClosedError(`store ${this.store.name} is closed: close lifetime ${this.id} before its store`, { lifetime: this.id });
        }
        const result = await this.record.close(endedTtlMs(this.store));
        this.ended = true;
        this.closedHere = true;
        untrackOpen(this.store, this.id);
        log('closed %s (was %s): evicted %d object(s)', this.id, result.before, result.evicted);
      })();
      this.closing = closing;
      // A close that failed (e.g. Redis unreachable) can be tried again.
      closing.catch(() => {
        if (this.closing === closing) this.closing = undefined;
      });
    }
    await this.closing;
  }

  /**
   * Whether the lifetime has ended, as Redis sees it: true from the moment a
   * close begins (in any process; from then on it takes no new objects) or
   * its lease runs out, and for an id Redis does not know.
   *
   * @example
   * ```ts
   * if (await lifetime.done()) lifetime = new ContextLifetime(store);
   * ```
   */
  async done(): Promise<boolean> {
    if (this.ended) return true;
    await this.created;
    const state = await this.record.state();
    if (state !== 'open') this.ended = true;
    // Closed (or its lease ran out) elsewhere: nothing for the store's close to do.
    if (state === 'ended' || state === undefined) untrackOpen(this.store, this.id);
    return this.ended;
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }

  /** `util.inspect` shows the kind, id and name, never Redis state (it cannot await). */
  [inspect.custom](): string {
    return `${this.constructor.name}(id=${this.id}${this.name ? `, name=${JSON.stringify(this.name)}` : ''}, store=${this.store.name})`;
  }
}
