import assert from 'node:assert/strict';
import { fork } from 'node:child_process';
import { once } from 'node:events';
import { fileURLToPath } from 'node:url';
import { RedisConnector, Store, fromRef, proxyReviver, resolve, toRef, type ProxyRef } from 'proxystore-redis';

const url = process.env.PROXYSTORE_REDIS_URL ?? 'redis://127.0.0.1:6379';
const namespace = process.env.PROXYSTORE_REDIS_NAMESPACE ?? 'app';
// Each process has its own store of the same name; refs name the store, never a URL.
const store = new Store('default', new RedisConnector({ url, namespace }), { register: true });

if (process.argv[2] !== 'consumer') {
  // Keys: put, get, exists, evict.
  const key = await store.put(new Map([['answer', 42]]));
  assert.deepEqual(await store.get(key), new Map([['answer', 42]]));
  await store.evict(key);

  // A proxy is resolved here already: use it as the array.
  const numbers = await store.proxy(Array.from({ length: 1_000_000 }, (_, i) => i));
  assert.equal(numbers.length, 1_000_000);

  // Send only its ref (about 150 bytes) to another process.
  const consumer = fork(fileURLToPath(import.meta.url), ['consumer'], { env: process.env });
  consumer.send({ ref: toRef(numbers), event: JSON.stringify({ job: 'sum', input: numbers }) });
  const [reply] = (await once(consumer, 'message')) as [{ sum: number }];
  assert.equal(reply.sum, 499_999_500_000);

  await store.evict(toRef(numbers).key);
  await store.close();
} else {
  process.once('message', async (msg: { ref: ProxyRef; event: string }) => {
    const p = fromRef<number[]>(msg.ref); // nothing fetched yet
    assert.ok(Array.isArray(p)); // the shape is known before resolution
    await resolve(p); // one GET
    const sum = p.reduce((a, b) => a + b, 0);

    // The same ref, carried inside JSON:
    const event = JSON.parse(msg.event, proxyReviver) as { job: string; input: number[] };
    assert.deepEqual(await resolve(event.input), p);

    process.send!({ sum }, () => void store.close().then(() => process.disconnect()));
  });
}
