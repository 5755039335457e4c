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
import { ChunkGone, changedError, readRange } from '../chunks/read.js';
import createDebug from 'debug';
import { olderVersion } from '../cache/cache.js';
import { setHandleReader, type ProxyState } from '../proxy/proxy.js';
import { objectKeys, storeOf, type HandleState } from './handle.js';
import { runFor } from './lifecycle.js';

const log = createDebug('proxystore:ownership');

/**
 * The target of a handle, read under its lease. With the store's cache on,
 * the read still goes to Redis (the lease check, and the causality of the
 * borrow rules: a mutable borrow granted after another one's update must
 * see that update, whatever this process's invalidations say), but sends
 * the version of the bytes it has cached: when they are current, only the
 * version comes back and the cached bytes are decoded. Each resolve decodes
 * its own copy: handles never share a target, so a local mutation of one
 * never shows in another. The read's version is recorded so that no older
 * one is ever served here (src/cache/).
 */
async function readHandle(state: ProxyState): Promise<unknown> {
  const handle = state as HandleState;
  const store = storeOf(handle);
  const cache = store.objectCache;
  let cached: { bytes: Buffer; version: number } | undefined;
  if (cache) {
    const wait = cache.settle();
    if (wait) await wait;
    cached = cache.peekBytes(handle.key);
  }
  log('GET %s (%s handle, lease-checked%s)', handle.key, handle.kind, cached ? `, cached version ${cached.version}` : '');
  const ticket = cache?.begin(handle.key);
  let read: { bytes: Buffer | undefined; version: number } | undefined;
  try {
    for (let attempt = 0; ; attempt++) {
      const got = await runFor(
        store,
        handle,
        'handleRead',
        objectKeys(store, handle.key),
        { key: handle.key, token: handle.token, known: cached ? cached.version : -1 },
        'resolve',
      );
      if (!got.chunked) {
        read = got;
        break;
      }
      // A chunked object: its chunks, under the lease just checked. An update
      // in between swapped the whole hash: read again (never a mix).
      try {
        read = { bytes: await readRange(store.connector, store.connector.dataKey(handle.key), handle.key, got.chunked), version: got.version };
        break;
      } catch (err) {
        if (!(err instanceof ChunkGone)) throw err;
        if (attempt >= 3) throw changedError(handle.key);
      }
    }
  } finally {
    if (ticket) cache?.end(ticket, read?.bytes && { bytes: read.bytes, version: read.version });
  }
  let bytes = read.bytes;
  if (bytes === undefined) {
    // Our cached bytes are the current version.
    if (!cached || cached.version !== read.version) throw olderVersion(handle.key, read.version);
    bytes = cached.bytes;
    cache?.counted(true);
  } else if (cache) {
    cache.counted(false);
    if (cache.isOlder(handle.key, read.version)) throw olderVersion(handle.key, read.version);
  }
  cache?.sawVersion(handle.key, read.version);
  return store.decode(bytes, handle.key, handle.deserializer);
}

setHandleReader(readHandle);
