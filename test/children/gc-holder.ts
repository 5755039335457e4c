/**
 * Holds owned objects in module-level bindings while the test forces garbage
 * collection (run with --expose-gc). The FinalizationRegistry backstop must
 * leave alone every object whose proxy is still reachable:
 *
 * - `owned`: a module-level const that a message handler reads later;
 * - `kept`: one of two proxies revived from the same ref (the other is
 *   dropped at once and collected: its finalizer must not end the token
 *   `kept` still holds);
 * - `forgettable`: held by a module-level object, deleted from it on
 *   { forget: 1 }: then it is garbage, and the backstop evicts its object.
 *   (It is made inside a function: a value the module body itself awaited
 *   can stay in the module's frame, out of the program's reach but alive.)
 *
 * Messages out: { keys: { owned, kept, forgettable } } once set up,
 * { collected: true } after each round of gc() calls, { used } for { use: 1 }.
 * { exit: 1 } closes the store (dropping what it owns) and exits.
 */
import { RedisConnector, Store, borrow, fromRef, getKey, release, resolve, toRef, type OwnedProxy } from '../../src/index.js';
import { CHILD_ENV } from '../harness/child.js';
import { connectionOptions, targetFromEnv } from '../harness/target.js';

const gc = (globalThis as { gc?: () => void }).gc;
if (!gc) throw new Error('run with --expose-gc');
const namespace = process.env[CHILD_ENV.namespace] as string;
const store = new Store(`store-${namespace}`, new RedisConnector({ ...connectionOptions(targetFromEnv()), namespace }), {
  register: true,
  leaseTtl: Number(process.env.LEASE_TTL ?? 1),
});

const owned: OwnedProxy<{ name: string }> = await store.ownedProxy({ name: 'owned' });
const ref = toRef(await store.ownedProxy({ name: 'kept' }));
const kept = fromRef<{ name: string }>(ref) as OwnedProxy<{ name: string }>;
(() => fromRef(ref))(); // a duplicate of `kept`, garbage at once
const holder: { forgettable?: OwnedProxy<{ name: string }> } = {};
const forgettableKey = await (async () => {
  holder.forgettable = await store.ownedProxy({ name: 'forgettable' });
  return getKey(holder.forgettable);
})();

/** gc() every 50 ms for `ms` (finalizers run between the calls), then report. */
async function collect(ms: number): Promise<void> {
  const until = Date.now() + ms;
  while (Date.now() < until) {
    gc!();
    await new Promise((r) => setTimeout(r, 50));
  }
  process.send?.({ collected: true });
}

process.on('message', (msg: { collect?: number; use?: 1; forget?: 1; exit?: 1 }) => {
  if (msg.exit) void store.close().then(() => process.exit(0));
  if (msg.collect) void collect(msg.collect);
  if (msg.forget) delete holder.forgettable;
  if (msg.use) {
    void (async () => {
      const used: Record<string, unknown> = {};
      for (const [name, handle] of Object.entries({ owned, kept })) {
        await release(await borrow(handle));
        used[name] = (await resolve(handle)).name;
      }
      process.send?.({ used });
    })().catch((err: Error) => process.send?.({ used: { error: `${err.name}: ${err.message}` } }));
  }
});
process.on('disconnect', () => void store.close());
process.send?.({ keys: { owned: getKey(owned), kept: getKey(kept), forgettable: forgettableKey } });
