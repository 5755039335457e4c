/**
 * A process that holds, or lets go of, references to one deduped object:
 * `put` stores the shared 10 MB value with dedupe: true (its key is the
 * hash of its bytes, so every process gets the same key) and reports the
 * key; `evict KEY COUNT` takes COUNT references; `lifetime ID` attaches to
 * the ContextLifetime ID and puts a small shared value under it (the
 * lifetime's reference); `close ID` closes that lifetime. Then it closes its
 * store and exits: the references live in Redis, not in the process.
 *
 * Messages out: { key } after a put, { evicted: COUNT } after the evicts,
 * { closed: true } after a close.
 */
import { ContextLifetime, RedisConnector, Store } from '../../src/index.js';
import { CHILD_ENV } from '../harness/child.js';
import { connectionOptions, targetFromEnv } from '../harness/target.js';

/** The value every process puts: 10 MB, the same bytes everywhere. */
export const SHARED_SIZE = 10 * 1024 * 1024;

const namespace = process.env[CHILD_ENV.namespace] as string;
const store = new Store('dedupe-holder', new RedisConnector({ ...connectionOptions(targetFromEnv()), namespace }));
const [mode, key, count] = process.argv.slice(2);

function send(msg: unknown): Promise<void> {
  return new Promise((res) => process.send?.(msg, () => res()) ?? res());
}

try {
  if (mode === 'put') {
    await send({ key: await store.put(Buffer.alloc(SHARED_SIZE, 7), { dedupe: true }) });
  } else if (mode === 'lifetime') {
    const lifetime = await ContextLifetime.attach(store, key as string);
    await send({ key: await store.put({ shared: 'config' }, { dedupe: true, lifetime }) });
  } else if (mode === 'close') {
    await (await ContextLifetime.attach(store, key as string)).close();
    await send({ closed: true });
  } else {
    for (let i = 0; i < Number(count); i++) await store.evict(key as string);
    await send({ evicted: Number(count) });
  }
} finally {
  await store.close();
  process.disconnect?.();
}
