/**
 * ProxyLocker: a box around a proxy that keeps it from being resolved by
 * accident (by code that inspects values it is handed). `unlock()` gives the
 * proxy back.
 *
 * @module
 */
import type { Proxy } from './proxy.js';
import { toRef, type ProxyRef } from './refs.js';

/**
 * Holds a proxy so that nothing resolves it by accident.
 *
 * @example
 * ```ts
 * const locker = await store.lockedProxy(bigArray);
 * queue.push(locker);           // nothing can touch the target
 * const p = locker.unlock();     // the proxy
 * ```
 */
export class ProxyLocker<T> {
  readonly #proxy: Proxy<T>;

  constructor(proxy: Proxy<T>) {
    this.#proxy = proxy;
  }

  /** The proxy inside. */
  unlock(): Proxy<T> {
    return this.#proxy;
  }

  /** A locker serializes as its proxy's ref marked `locked`; `proxyReviver` rebuilds the locker. */
  toJSON(): ProxyRef & { locked: true } {
    return { ...toRef(this.#proxy), locked: true };
  }
}
