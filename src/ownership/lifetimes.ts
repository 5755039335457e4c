/**
 * Owned objects in lifetimes (docs/lifetimes.md, "Owned objects in
 * lifetimes"): the lifetime bounds the owner. The rules live in the Lua
 * scripts (lua/includes/lifetimeBound.lua, ownedMember.lua): a lifetime's
 * end ends the owner and evicts the object once no borrow is left; this
 * module only checks, before any I/O, what the scripts cannot see:
 *
 * - `addProxy` takes an `OwnedProxy` (valid: a moved or dropped handle is
 *   refused) but not a borrow: a borrower cannot bound its owner's object;
 * - on Redis Cluster, a foreign key (another slot) that is owned and bound
 *   to another lifetime is refused (an owned object belongs to one lifetime
 *   at a time), as lua/lifetimeAddKeys.lua refuses the others itself. That
 *   check is a probe of the key's master before the add, not atomic with it.
 *
 * @module
 */
import { AlreadyOwnedError, InvalidOptionsError } from '../errors.js';
import { checkValid, type ProxyState } from '../proxy/proxy.js';
import { kindName } from './handle.js';

/**
 * Throw for a borrow handle among `states` (InvalidOptionsError), or an
 * `OwnedProxy` that is no longer valid (ReferenceInvalidError).
 * @internal Called by `addProxy` of every lifetime.
 */
export function checkHandles(states: readonly ProxyState[], lifetimeId: string): void {
  for (const state of states) {
    if (state.kind === 'ref' || state.kind === 'refmut') {
      throw new InvalidOptionsError(
        `lifetime ${lifetimeId}: addProxy got a ${kindName(state.kind)} of key ${state.key}: a borrow cannot bind its owner's object to a lifetime; add the OwnedProxy`,
        { key: state.key, lifetime: lifetimeId },
      );
    }
    if (state.kind === 'owned') checkValid(state, 'addProxy');
  }
}

/**
 * Throw {@link AlreadyOwnedError} when one of `keys` (foreign members on
 * Redis Cluster) is owned and bound to another lifetime than `lifetimeId`,
 * as `boundTo` says (the add's probe of their masters, see
 * lifetimes/foreign.ts `probeForeign`). Not atomic with the add that follows.
 * @internal Called by the lifetimes' addKey path on Redis Cluster.
 */
export function refuseBoundElsewhere(keys: readonly string[], boundTo: readonly (string | undefined)[], lifetimeId: string): void {
  const i = boundTo.findIndex((id) => id !== undefined && id !== lifetimeId);
  if (i < 0) return;
  const key = keys[i] as string;
  // The same words as lua/lifetimeAddKeys.lua's refusal.
  throw new AlreadyOwnedError(
    `lifetime ${lifetimeId}: key ${key} is owned and bound to lifetime ${String(boundTo[i])} already: an owned object belongs to one lifetime at a time`,
    { key, lifetime: lifetimeId },
  );
}
