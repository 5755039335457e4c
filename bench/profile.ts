/**
 * `node --cpu-prof --import tsx bench/profile.ts [case]`: the hot paths of
 * issue 14 in a loop against a private redis-server, for a CPU profile
 * (docs/performance.md reads it with bench/profile-summary.ts). Cases:
 * consume, borrow, put64, get64, resolve, and issue 13's compose rows:
 * putRules (reads + lease + ttl), consumeReads3, dedupeNew, dedupe10mb
 * (default: all, ~3 s each).
 */
import { Redis } from 'ioredis';
import { LeaseLifetime, RedisConnector, Store, borrow, fromRef, release, resolve, toRef } from '../src/index.js';
import { startRedisServer } from '../scripts/local-redis.js';

const SMALL = { id: 12345, name: 'widget', tags: ['a', 'b', 'c'], price: 9.99, stock: 42, at: '2026-11-26T12:00:00Z' };
const which = process.argv[2] ?? 'all';
const ms = Number(process.env.PROFILE_MS ?? 3000);
const server = await startRedisServer();
const url = server.url;
const store = new Store('prof', new RedisConnector({ url, namespace: 'prof' }), { register: true, ...(process.env.CACHE_SIZE ? { cacheSize: Number(process.env.CACHE_SIZE) } : {}) });
const maker = new Store('prof', new RedisConnector({ url, namespace: 'prof' }));
const raw = new Redis(url);

async function loop(fn: () => Promise<unknown>, concurrency = 1): Promise<number> {
  let done = 0;
  const until = performance.now() + ms;
  await Promise.all(Array.from({ length: concurrency }, async () => {
    while (performance.now() < until) { await fn(); done++; }
  }));
  return done;
}

const run: Record<string, () => Promise<number>> = {
  async consume() {
    let refs: ReturnType<typeof toRef>[] = [];
    return loop(async () => {
      if (refs.length === 0) refs = (await maker.proxyBatch(Array.from({ length: 1000 }, () => SMALL), { evict: true })).map((p) => toRef(p));
      return resolve(fromRef(refs.pop()!));
    });
  },
  async borrow() {
    const owned = await store.ownedProxy(SMALL);
    return loop(async () => release(await borrow(owned)));
  },
  put64: () => loop(() => store.put(SMALL), 64),
  async get64() {
    const keys = await store.putBatch(Array.from({ length: 1000 }, () => SMALL));
    let i = 0;
    return loop(() => store.get(keys[i++ % keys.length]!), 64);
  },
  async resolve() {
    return loop(async () => resolve(fromRef(toRef(await maker.proxy(SMALL)))));
  },
  async putRules() {
    const lifetime = new LeaseLifetime(store, { expiry: 3600 });
    await lifetime.waitUntilReady();
    const n = await loop(() => store.put(SMALL, { lifetime, reads: 3, ttl: 600 }));
    await lifetime.close();
    return n;
  },
  async consumeReads3() {
    const refs: ReturnType<typeof toRef>[] = [];
    return loop(async () => {
      if (refs.length === 0) for (const p of await maker.proxyBatch(Array.from({ length: 1000 }, () => SMALL), { reads: 3 })) refs.push(toRef(p), toRef(p), toRef(p));
      return resolve(fromRef(refs.pop()!));
    });
  },
  dedupeNew() {
    let n = 0;
    return loop(() => store.put({ ...SMALL, n: n++ }, { dedupe: true }));
  },
  dedupe10mb() {
    const big = Buffer.alloc(10 * 1024 * 1024, 5);
    return loop(() => store.put(big, { dedupe: true }));
  },
};
try {
  for (const [name, fn] of Object.entries(run)) {
    if (which !== 'all' && which !== name) continue;
    await raw.config('RESETSTAT');
    const n = await fn();
    console.log(`${name}: ${Math.round((n * 1000) / ms)} ops/s`);
    // Server time per command (usec_per_call): what the scripts cost Redis, beside the client's CPU.
    const stats = (await raw.info('commandstats')).split('\r\n').filter((l) => l.startsWith('cmdstat_'));
    for (const l of stats) console.log(`  ${l.replace(/,rejected_calls=\d+,failed_calls=\d+/, '')}`);
  }
} finally {
  await maker.close();
  await store.close();
  raw.disconnect();
  await server.stop();
}
