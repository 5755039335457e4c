/**
 * How a handle starts and ends in this process: adopted (renewed here and
 * watched by the finalizer), retired (no longer renewed, invalid), and the
 * one helper through which operations run a script on a handle's behalf.
 *
 * @module
 */
import { LifetimeEndedError, ReferenceInvalidError } from '../errors.js';
import { proxyState } from '../proxy/proxy.js';
import type { ScriptArgs, ScriptKeys, ScriptName, ScriptReply } from '../redis/scripts.js';
import type { Store } from '../store.js';
import { unwatch, watch } from './finalizer.js';
import { invalidate, type HandleState, type InvalidCause } from './handle.js';
import { renewalOf, type Renewal } from './renewal.js';

/** Start renewing a handle held here and watching it for collection. */
export function adopt(renewal: Renewal, proxy: object): void {
  const state = proxyState(proxy) as HandleState;
  renewal.hold(state);
  watch(proxy, state, renewal);
}

/** The handle's token ended: stop renewing it here and make the handle (and any other holding the token here) unusable. */
export function retire(store: Store, state: HandleState, reason: string, cause?: InvalidCause): void {
  renewalOf(store).end(state.token, reason, cause);
  unwatch(state);
  invalidate(state, reason, cause);
}

/**
 * Run a script for a handle. When Redis says the handle's token is no longer
 * live (moved, released, dropped, lease ended), the local handle is retired
 * too before the error is thrown. `op` names the call in the store's
 * metrics (default: the script's name).
 */
export async function runFor<N extends ScriptName>(
  store: Store,
  state: HandleState,
  name: N,
  keys: ScriptKeys<N>,
  args: ScriptArgs<N>,
  op: string = name,
): Promise<ScriptReply<N>> {
  try {
    return await store.measure(op, () => store.connector.scripts.run(name, keys, args, { key: state.key }));
  } catch (err) {
    // The object's lifetime ended its owner: the OwnedProxy is invalid (a
    // live borrow stays valid: it can still be read and released).
    if (err instanceof LifetimeEndedError && state.kind === 'owned') retire(store, state, err.message, 'lifetime');
    if (!(err instanceof ReferenceInvalidError)) throw err;
    // Gone because Redis lost its data? Then say that, not "released or dropped".
    const lost = await store.connector.dataLost(store.connector.dataKey(state.key), `${name} of key ${state.key} failed`, { key: state.key });
    retire(store, state, lost ? lost.message : err.message, lost !== undefined ? 'dataLost' : undefined);
    throw lost ?? err;
  }
}
