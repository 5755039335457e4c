/**
 * Measures how much a fresh process's RSS grows while it fetches one large
 * Buffer: `lib` through Store.get, `raw` through ioredis getBuffer.
 * argv: mode url namespace key. Prints {"growth": bytes}.
 */
import { Redis } from 'ioredis';
import { RedisConnector, Store } from '../src/index.js';

const [mode, url, namespace, key] = process.argv.slice(2) as [string, string, string, string];
const gc = (globalThis as { gc?: () => void }).gc ?? (() => {});

let peak = 0;
const sample = () => {
  peak = Math.max(peak, process.memoryUsage().rss);
};

let fetch: () => Promise<unknown>;
let close: () => Promise<unknown>;
if (mode === 'lib') {
  const store = new Store('rss', new RedisConnector({ url, namespace }));
  await store.exists(key);
  fetch = () => store.get(key);
  close = () => store.close();
} else {
  const redis = new Redis(url);
  await redis.exists(key);
  fetch = () => redis.getBuffer(key);
  close = () => redis.quit();
}
gc();
await new Promise((r) => setTimeout(r, 50));
const before = process.memoryUsage().rss;
const timer = setInterval(sample, 1);
const value = (await fetch()) as Buffer;
sample();
clearInterval(timer);
if (!value || value.length < 1) throw new Error('nothing fetched');
await close();
console.log(JSON.stringify({ growth: peak - before, length: value.length }));
