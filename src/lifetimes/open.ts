/**
 * The ContextLifetimes made through each store in this process that are
 * still open, so that `store.close()` closes them. ProxyStore expects
 * lifetimes to be closed before their store; a ContextLifetime left open
 * when its store closes would keep its meta and members in Redis with no
 * TTL, forever, and no handle here could close it any more (a closed store
 * refuses everything). So the store's close closes them first, while its
 * connection is still open.
 *
 * - A `ContextLifetime` is held here until it is closed through its handle,
 *   or its handle sees it ended (`done()`), or the store closes: a forgotten
 *   handle must not take the only means to close it with it.
 * - A `LeaseLifetime` is not: its lease ends it in Redis, with or without
 *   the store, and a lease is how objects outlive the process that made them
 *   (a producer that puts under a lease, closes its store and exits).
 * - Nor are handles from `attach`: the lifetime belongs to the process that
 *   made it (a worker closing its store must not end the producer's lifetime).
 *
 * @module
 */
import type { Store } from '../store.js';

/** What the store's close needs of a lifetime. */
export interface OpenLifetime {
  /** Close it as part of its store's close (the store refuses new work; its connection is still open). */
  closeForStore(): Promise<void>;
}

const byStore = new WeakMap<Store, Map<string, OpenLifetime>>();

/** Hold `lifetime` (id `id`) until it is closed, so that `store.close()` closes it. */
export function trackOpen(store: Store, id: string, lifetime: OpenLifetime): void {
  let entries = byStore.get(store);
  if (!entries) {
    const created = new Map<string, OpenLifetime>();
    byStore.set(store, created);
    store.onClose(() => closeAll(created));
    entries = created;
  }
  entries.set(id, lifetime);
}

/** The lifetime `id` of `store` is closed (or known ended): nothing left for the store's close to do. */
export function untrackOpen(store: Store, id: string): void {
  byStore.get(store)?.delete(id);
}

/** How many lifetimes of `store` its close would close. @internal */
export function openCount(store: Store): number {
  return byStore.get(store)?.size ?? 0;
}

async function closeAll(entries: Map<string, OpenLifetime>): Promise<void> {
  const open = [...entries.values()];
  entries.clear();
  const results = await Promise.allSettled(open.map((lifetime) => lifetime.closeForStore()));
  const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
  if (failed) throw failed.reason;
}
