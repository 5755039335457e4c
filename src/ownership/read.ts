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
import { olderVersion } from '../cache/cache.js';
import { setHandleReader, type ProxyState } from '../proxy/proxy.js';
import { objectKeys, storeOf, type HandleState } from './handle.js';
import { runFor } from './lifecycle.js';

const log = createDebug('proxystore:ownership');

/**
 * The target of a handle, read under its lease. With the store's cache on,
 * a handle resolves from the object's cached bytes when they are there
 * (a fresh decode each time: handles never share a target, so a local
 * mutation of one never shows in another), and the read's version is
 * recorded so that no older one is ever served here (src/cache/).
 */
async function readHandle(state: ProxyState): Promise<unknown> {
  const handle = state as HandleState;
  const store = storeOf(handle);
  const cache = store.objectCache;
  if (cache) {
    const wait = cache.settle();
    if (wait) await wait;
    const cached = cache.getBytes(handle.key);
    if (cached) {
      log('GET %s (%s handle, cached)', handle.key, handle.kind);
      return store.measure('resolve', async () => store.decode(cached, handle.key, handle.deserializer));
    }
  }
  log('GET %s (%s handle, lease-checked)', handle.key, handle.kind);
  const ticket = cache?.begin(handle.key);
  let read: { bytes: Buffer; version: number } | undefined;
  try {
    read = await runFor(store, handle, 'handleRead', objectKeys(store, handle.key), { key: handle.key, token: handle.token }, 'resolve');
  } finally {
    if (ticket) cache?.end(ticket, read && { bytes: read.bytes, version: read.version });
  }
  if (cache) {
    if (cache.isOlder(handle.key, read.version)) throw olderVersion(handle.key, read.version);
    cache.sawVersion(handle.key, read.version);
  }
  return store.decode(read.bytes, handle.key, handle.deserializer);
}

setHandleReader(readHandle);
