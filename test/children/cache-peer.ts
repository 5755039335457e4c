/**
 * The "other process" of the cache tests (test/cache*.test.ts) and of the
 * bench's invalidation-lag row: writes on request, through its own store
 * (same name and namespace as the parent's, `CACHE_SIZE` from the
 * environment, default 16), and says when each write returned (`at`,
 * Date.now(): parent and child share the clock).
 *
 * Messages in:  { id, op: 'put', value, owned?: boolean } -> { key }
 *               { id, op: 'evict', key }
 *               { id, op: 'consume', ref }             (resolves a consuming ref)
 *               { id, op: 'update', ref, value }       (a RefMutProxy's ref: resolve, assign `value`'s fields, update; keeps the handle)
 *               { id, op: 'updateAgain', key, value }  (the kept RefMutProxy of `key`)
 *               { id, op: 'release', key }             (releases the kept RefMutProxy)
 *               { id, op: 'drop', key }                (drops the owned object it made with put { owned: true })
 *               { id, op: 'get', key }                 -> { value }
 *               { id, op: 'exit' }
 * Messages out: { ready: true }, then { id, ok: true, at, result } | { id, ok: false, name, message }
 */
import {
  RedisConnector,
  Store,
  drop,
  fromRef,
  release,
  resolve,
  update,
  type OwnedProxy,
  type RefMutProxy,
} from '../../src/index.js';
import { CHILD_ENV } from '../harness/child.js';
import { connectionOptions, targetFromEnv } from '../harness/target.js';

const namespace = process.env[CHILD_ENV.namespace] as string;
const storeName = process.env.STORE_NAME as string;
const store = new Store(storeName, new RedisConnector({ ...connectionOptions(targetFromEnv()), namespace }), {
  register: true,
  cacheSize: Number(process.env.CACHE_SIZE ?? '16'),
});

const owned = new Map<string, OwnedProxy<Record<string, unknown>>>();
const writers = new Map<string, RefMutProxy<Record<string, unknown>>>();

type Msg = { id: number; op: string; key?: string; ref?: unknown; value?: unknown; owned?: boolean };

async function handle(msg: Msg): Promise<unknown> {
  switch (msg.op) {
    case 'put': {
      if (!msg.owned) return { key: await store.put(msg.value) };
      const o = (await store.ownedProxy(msg.value)) as unknown as OwnedProxy<Record<string, unknown>>;
      const { getKey } = await import('../../src/index.js');
      const key = getKey(o);
      owned.set(key, o);
      return { key };
    }
    case 'evict':
      await store.evict(msg.key as string);
      return null;
    case 'consume':
      return { value: await resolve(fromRef(msg.ref as never)) };
    case 'update': {
      const w = fromRef(msg.ref as never) as unknown as RefMutProxy<Record<string, unknown>>;
      const target = await resolve(w);
      Object.assign(target, msg.value);
      await update(w);
      const { getKey } = await import('../../src/index.js');
      writers.set(getKey(w), w);
      return null;
    }
    case 'updateAgain': {
      const w = writers.get(msg.key as string) as RefMutProxy<Record<string, unknown>>;
      Object.assign(await resolve(w), msg.value);
      await update(w);
      return null;
    }
    case 'release': {
      const w = writers.get(msg.key as string) as RefMutProxy<Record<string, unknown>>;
      writers.delete(msg.key as string);
      await release(w);
      return null;
    }
    case 'drop': {
      const o = owned.get(msg.key as string) as OwnedProxy<Record<string, unknown>>;
      owned.delete(msg.key as string);
      await drop(o);
      return null;
    }
    case 'get':
      return { value: await store.get(msg.key as string) };
    default:
      throw new Error(`unknown op ${msg.op}`);
  }
}

process.on('message', (msg: Msg) => {
  if (msg.op === 'exit') {
    void store.close().then(() => process.send?.({ id: msg.id, ok: true, at: Date.now(), result: null }, () => process.disconnect()));
    return;
  }
  handle(msg).then(
    (result) => process.send?.({ id: msg.id, ok: true, at: Date.now(), result }),
    (err: Error) => process.send?.({ id: msg.id, ok: false, name: err.name, message: err.message }),
  );
});
process.send?.({ ready: true });
