/**
 * Holds an owner and a borrow (so its renewal timer runs), then quits its own
 * Redis client without closing the store and has nothing left to do: it must
 * exit by itself, since renewal never keeps a finished process alive.
 * Sends { key } before quitting.
 */
import { RedisConnector, Store, borrow, getKey } from '../../src/index.js';
import { CHILD_ENV } from '../harness/child.js';
import { rawClient, targetFromEnv } from '../harness/target.js';

const namespace = process.env[CHILD_ENV.namespace] as string;
const client = rawClient(targetFromEnv());
const store = new Store(`idle-${namespace}`, new RedisConnector({ client, namespace }), { leaseTtl: 1 });
const owned = await store.ownedProxy({ held: true });
const shared = await borrow(owned);
// Kept reachable, so no finalizer ends them and stops the heartbeat for us.
(globalThis as { held?: unknown }).held = [owned, shared];
// Let a renewal or two happen, so the heartbeat is certainly running.
await new Promise((r) => setTimeout(r, 700));
process.send?.({ key: getKey(owned), shared: getKey(shared) }, () => {
  // Nothing keeps the process alive now but the (unref'd) renewal timer.
  void client.quit().then(() => process.disconnect());
});
