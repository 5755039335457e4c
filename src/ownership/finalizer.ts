/**
 * The backstop for handles that nobody ended: when a valid handle's proxy is
 * garbage collected, its borrow is released, or its owned object is dropped
 * (or, when still borrowed, evicted as soon as its last borrow ends).
 *
 * ProxyStore does this in `__del__`, which raises when an owner is deleted
 * while borrowed; a finalizer cannot throw, hence the deferred eviction.
 * Finalizers may never run (process exit, no GC pressure): leases are what
 * guarantees that nothing outlives its process for long, this only makes it
 * prompter.
 *
 * @module
 */
import type { ProxyState } from '../proxy/proxy.js';
import type { HandleKind, HandleState } from './handle.js';
import type { Renewal } from './renewal.js';

interface Held {
  renewal: Renewal;
  token: string;
  kind: HandleKind;
  key: string;
}

const registry = new FinalizationRegistry<Held>((held) => {
  void held.renewal.collected(held.token, held.kind, held.key);
});

/** End the handle when `proxy` is collected, unless {@link unwatch}ed first. */
export function watch(proxy: object, state: HandleState, renewal: Renewal): void {
  registry.register(proxy, { renewal, token: state.token, kind: state.kind as HandleKind, key: state.key }, state);
}

/** The handle ended (or moved away) some other way: its collection must do nothing. */
export function unwatch(state: ProxyState): void {
  registry.unregister(state);
}
