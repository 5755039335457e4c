/**
 * Resolving an ownership handle: one `handleRead` script checks that the
 * handle's token still holds a lease and returns the bytes, so a handle
 * whose lease lapsed (its process stalled past `leaseTtl` while another
 * process took a mutable borrow and wrote) reads nothing: it rejects
 * `ReferenceInvalidError` and is retired. Plain proxies still resolve with a
 * plain GET (`Store.resolveTarget`).
 *
 * @module
 */
import createDebug from 'debug';
import { setHandleReader, type ProxyState } from '../proxy/proxy.js';
import { objectKeys, storeOf, type HandleState } from './handle.js';
import { runFor } from './lifecycle.js';

const log = createDebug('proxystore:ownership');

/** The target of a handle, read under its lease. */
async function readHandle(state: ProxyState): Promise<unknown> {
  const handle = state as HandleState;
  const store = storeOf(handle);
  log('GET %s (%s handle, lease-checked)', handle.key, handle.kind);
  const bytes = await runFor(store, handle, 'handleRead', objectKeys(store, handle.key), { key: handle.key, token: handle.token }, 'resolve');
  return store.decode(bytes, handle.key, handle.deserializer);
}

setHandleReader(readHandle);
