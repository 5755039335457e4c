/**
 * Owned objects and lifetimes must not silently fight over when an object is
 * evicted (a lifetime's close would evict a borrowed owned object; the
 * owner's last lease would evict a lifetime's member). Until a combined
 * model exists, an object is either owned or in lifetimes, never both:
 *
 * - `intoOwned` of an own member of a lifetime is refused atomically by its
 *   script (lua/intoOwned.lua checks the lifetime's members set, which
 *   shares the object's slot);
 * - `addProxy` of an ownership handle is refused here, before any I/O;
 * - `addKey` (and `addProxy` of a plain proxy) of a key that has an
 *   ownership record is refused by lua/lifetimeAddKeys.lua, which is given
 *   each object's record beside its data key and checks them all before it
 *   writes anything: atomic with the add, in the same round trip. On Redis
 *   Cluster, foreign members (other slots, other masters) cannot be in that
 *   script: {@link refuseOwnedForeign} checks their records on their own
 *   masters before anything is written, which is *not* atomic with the add
 *   (an `intoOwned` racing it can slip in between).
 *
 * @module
 */
import { AlreadyOwnedError } from '../errors.js';
import type { ProxyState } from '../proxy/proxy.js';
import { kindName } from './handle.js';

const WHY = 'owned objects cannot join lifetimes yet (the lifetime and the owner would each evict it on their own terms)';

/**
 * Throw {@link AlreadyOwnedError} when one of `states` is an ownership handle.
 * @internal Called by `addProxy` of every lifetime.
 */
export function refuseHandles(states: readonly ProxyState[], lifetimeId: string): void {
  const handle = states.find((s) => s.kind !== 'proxy');
  if (!handle) return;
  throw new AlreadyOwnedError(
    `lifetime ${lifetimeId}: addProxy got a ${kindName(handle.kind)} of key ${handle.key}: ${WHY}; ` +
      'give the lifetime a copy (lifetime-bound store.proxy(value, { lifetime })) or end the object with drop()',
    { key: handle.key, lifetime: lifetimeId },
  );
}

/**
 * Throw {@link AlreadyOwnedError} when one of `keys` (foreign members on
 * Redis Cluster, in other slots than the lifetime) has an ownership record,
 * as `owned` says (the add's probe of their masters: one EXISTS per key, one
 * pipeline per master, sent in parallel, see lifetimes/foreign.ts
 * `probeForeign`). Not atomic with the add that follows.
 * (lua/lifetimeAddKeys.lua refuses the others itself, with the same message.)
 * @internal Called by the lifetimes' addKey path on Redis Cluster.
 */
export function refuseOwnedForeign(keys: readonly string[], owned: readonly boolean[], lifetimeId: string): void {
  const i = owned.indexOf(true);
  if (i < 0) return;
  const key = keys[i] as string;
  // The same words as lua/lifetimeAddKeys.lua's refusal.
  throw new AlreadyOwnedError(
    `lifetime ${lifetimeId}: key ${key} has an owner (an OwnedProxy, or borrows of one): ${WHY}; ` +
      'give the lifetime a copy (store.proxy(value, { lifetime })), or leave the object to its owner',
    { key, lifetime: lifetimeId },
  );
}
