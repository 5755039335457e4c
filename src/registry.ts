/**
 * The process-wide registry of stores by name (ProxyStore's
 * `register_store`/`get_store`/`unregister_store`). A proxy revived from a
 * ref finds its store here by name.
 *
 * @module
 */
import { StoreExistsError } from './errors.js';
import { checkOptions } from './options.js';
import type { Store } from './store.js';

const stores = new Map<string, Store>();
/** Names whose registered store was closed here, and no store of that name registered since. */
const closedNames = new Map<string, { namespace: string; closedAt: number }>();

/**
 * Register a store under its name.
 *
 * @throws {@link StoreExistsError} when another store has that name and `existOk` is false.
 * @example
 * ```ts
 * registerStore(store);
 * getStore(store.name) === store; // true
 * ```
 */
export function registerStore(store: Store, options: { existOk?: boolean } = {}): void {
  checkOptions('registerStore', options, ['existOk']);
  const existing = stores.get(store.name);
  if (existing !== undefined && existing !== store && !options.existOk) {
    const name = JSON.stringify(store.name);
    throw new StoreExistsError(
      `a store named ${name} is already registered in this process (namespace ${existing.namespace}): ` +
        `use getStore(${name}) to get it, close it or call unregisterStore(${name}) before registering another, ` +
        'or make this one with { register: false } (a store that is not registered cannot resolve refs by name)',
    );
  }
  stores.set(store.name, store);
  closedNames.delete(store.name);
}

/**
 * The registered store of that name, or undefined.
 *
 * @example
 * ```ts
 * const store = getStore('default');
 * ```
 */
export function getStore(name: string): Store | undefined {
  return stores.get(name);
}

/**
 * Unregister a store (by name or by instance). Unknown names are ignored.
 *
 * @example
 * ```ts
 * unregisterStore('default');
 * ```
 */
export function unregisterStore(nameOrStore: string | Store): void {
  const name = typeof nameOrStore === 'string' ? nameOrStore : nameOrStore.name;
  if (typeof nameOrStore !== 'string' && stores.get(name) !== nameOrStore) return;
  stores.delete(name);
}

/** @internal Unregister a store that is closing, and remember that its name was closed here. */
export function unregisterClosed(store: Store): void {
  if (stores.get(store.name) !== store) return;
  stores.delete(store.name);
  closedNames.set(store.name, { namespace: store.namespace, closedAt: Date.now() });
}

/** @internal When the registered store of that name was closed here (and none registered since). */
export function closedStore(name: string): { namespace: string; closedAt: number } | undefined {
  return closedNames.get(name);
}
