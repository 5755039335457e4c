/**
 * Handles move, as pickling moves them in ProxyStore: `toRef` of a handle
 * invalidates the sender's handle, and the process that revives the ref
 * (`fromRef`, `proxyReviver`, msgpack) takes it over, renewal included.
 *
 * The sender keeps renewing a sent handle (transit mode) until a receiver
 * claims it, so a ref that waits in a queue does not expire; the receiver
 * claims it at once on revival. See `renewal.ts`.
 *
 * Also here: `await using` on a handle ends it (`drop`/`release`); a handle
 * that already ended or moved away is left alone.
 *
 * @module
 */
import { checkValid, proxyState, requireState, setHandleDisposer } from '../proxy/proxy.js';
import { setHandleMoves } from '../proxy/refs.js';
import { release } from './borrow.js';
import { unwatch } from './finalizer.js';
import { invalidate, storeOf, type HandleState, type OwnedProxy, type RefProxy } from './handle.js';
import { adopt } from './lifecycle.js';
import { drop } from './ops.js';
import { renewalOf } from './renewal.js';
import './read.js';

setHandleMoves({
  onSend(proxy) {
    const state = requireState(proxy, 'toRef') as HandleState;
    checkValid(state, 'toRef');
    renewalOf(storeOf(state)).send(state.token);
    unwatch(state);
    invalidate(
      state,
      'it was moved with toRef (as pickling moves it in ProxyStore): the handle revived from the ref holds it now',
    );
  },
  onReceive(proxy) {
    const state = proxyState(proxy) as HandleState;
    // A handle must be renewed by the store that serves it here, so that
    // store must exist now: a clear error beats a lease that silently lapses.
    const store = storeOf(state);
    state.source = store;
    const renewal = renewalOf(store);
    const sentFromHere = renewal.modeOf(state.token) === 'transit';
    adopt(renewal, proxy);
    // Sent and revived through the same store: this holder already holds it in Redis.
    if (!sentFromHere) renewal.claim(state);
  },
});

setHandleDisposer(async (proxy) => {
  const state = proxyState(proxy);
  if (!state?.valid) return;
  if (state.kind === 'owned') await drop(proxy as OwnedProxy<unknown>);
  else await release(proxy as RefProxy<unknown>);
});
