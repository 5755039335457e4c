/**
 * The process-wide registry of stores by name (ProxyStore's
 * `register_store`/`get_store`/`unregister_store`). A proxy revived from a
 * ref finds its store here by name.
 *
 * @module
 */
import { StoreExistsError } from './errors.js';
import type { Store } from './store.js';

const stores = new Map<string, Store>();

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
  const existing = stores.get(store.name);
  if (existing !== undefined && existing !== store && !options.existOk) {
    throw new StoreExistsError(`a store named ${JSON.stringify(store.name)} is already registered`);
  }
  stores.set(store.name, store);
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
