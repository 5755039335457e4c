/**
 * Reads a large value (argv[2] bytes, default 8 MB), closes the store and
 * prints how long the process lived after close() returned. Without the fix
 * in src/redis/parser-timer.ts, redis-parser's pool timer kept it alive for
 * about 3 s after an 8 MB read.
 */
import { RedisConnector, Store } from '../../src/index.js';
import { CHILD_ENV } from '../harness/child.js';

const size = Number(process.argv[2] ?? 8 * 1024 * 1024);
const store = new Store('large', new RedisConnector({ url: process.env[CHILD_ENV.redisUrl] as string, namespace: process.env[CHILD_ENV.namespace] as string }));
const key = await store.put(Buffer.alloc(size, 7));
const back = await store.get<Buffer>(key);
await store.evict(key);
await store.close();
const closedAt = performance.now();
process.on('exit', () => {
  console.log(JSON.stringify({ bytes: back?.length, lingeredMs: Math.round(performance.now() - closedAt) }));
});
