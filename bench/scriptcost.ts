/**
 * `npx tsx bench/scriptcost.ts [case,...]`: what each hot path costs the
 * Redis server, per operation, from `INFO commandstats` (usec_per_call of
 * every command the case sent, scripts and their inner calls apart), on a
 * private redis-server (or `REDIS_URL`). The cases run one at a time,
 * sequentially (c=1), after a warm-up, with a `CONFIG RESETSTAT` before each;
 * the setup of a case (objects to consume, an owned object) is not counted.
 *
 * With `VG_PID=<pid of a redis-server run under valgrind --tool=callgrind>`
 * (and `REDIS_URL` pointing at it) each case is also counted in instructions
 * (callgrind_control -z before, -d after): deterministic however loaded the
 * machine is. docs/performance.md shows how.
 */
import { execFileSync } from 'node:child_process';
import { readFileSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { ContextLifetime, Future, LeaseLifetime, RedisConnector, Store, borrow, fromRef, release, resolve, toRef, type ProxyRef } from '../src/index.js';
import { startRedisServer } from '../scripts/local-redis.js';

const SMALL = { id: 12345, name: 'widget', tags: ['a', 'b', 'c'], price: 9.99, stock: 42, at: '2026-11-26T12:00:00Z' };
const N = Number(process.env.N ?? 2000);
const only = process.argv[2]?.split(',');
const vgPid = process.env.VG_PID;

const server = process.env.REDIS_URL ? undefined : await startRedisServer();
const url = process.env.REDIS_URL ?? (server as { url: string }).url;
const raw = new Redis(url);
const store = new Store('cost', new RedisConnector({ url, namespace: 'cost' }), { register: true, cacheSize: 0 });
const maker = new Store('cost', new RedisConnector({ url, namespace: 'cost' }), { cacheSize: 0 });

/** Instructions since the last zeroing, from a fresh callgrind dump of `vgPid`. */
function vgInstructions(): number {
  execFileSync('callgrind_control', ['-d', String(vgPid)]);
  // The newest dump file of that pid.
  const dir = process.env.VG_DIR ?? process.cwd();
  const files = readdirSync(dir)
    .filter((f) => f.startsWith(`callgrind.out.${vgPid}`))
    .map((f) => join(dir, f))
    .sort((a, b) => statSync(b).mtimeMs - statSync(a).mtimeMs);
  const text = readFileSync(files[0] as string, 'utf8');
  const m = /^(?:summary|totals): (\d+)/m.exec(text);
  return Number(m?.[1] ?? NaN);
}

interface Case {
  setup?: () => Promise<void>;
  op: () => Promise<unknown>;
}
let refs: ProxyRef[] = [];
let owned: unknown;
let lifetime: ContextLifetime | undefined;
let lease: LeaseLifetime | undefined;
let n = 0;
const rawKey = () => `cost-raw:${n++}`;
const cases: Record<string, Case> = {
  set: { op: () => raw.set(rawKey(), JSON.stringify(SMALL)) },
  lpush: { op: () => raw.lpush('cost-raw:list', JSON.stringify(SMALL)) },
  getdel: {
    setup: async () => void (await raw.mset(...Array.from({ length: N }, (_, i) => [`cost-gd:${i}`, JSON.stringify(SMALL)]).flat())),
    op: () => raw.getdel(`cost-gd:${--n}`),
  },
  evalEmpty: { op: () => raw.eval("return redis.call('GET', KEYS[1])", 1, 'cost-raw:x') },
  put: { op: () => store.put(SMALL) },
  putEvict: { op: () => maker.proxy(SMALL, { evict: true }) },
  consume: {
    setup: async () => void (refs = (await maker.proxyBatch(Array.from({ length: N }, () => SMALL), { evict: true })).map((p) => toRef(p))),
    op: () => resolve(fromRef(refs.pop() as ProxyRef)),
  },
  putReads: { op: () => store.put(SMALL, { reads: 3 }) },
  consumeReads3: {
    setup: async () => {
      refs = [];
      for (const p of await maker.proxyBatch(Array.from({ length: Math.ceil(N / 3) }, () => SMALL), { reads: 3 })) refs.push(toRef(p), toRef(p), toRef(p));
    },
    op: () => resolve(fromRef(refs.pop() as ProxyRef)),
  },
  putContext: {
    setup: async () => {
      lifetime = new ContextLifetime(store);
      await lifetime.waitUntilReady();
    },
    op: () => store.put(SMALL, { lifetime }),
  },
  putReadsLeaseTtl: {
    setup: async () => {
      lease = new LeaseLifetime(store, { expiry: 3600 });
      await lease.waitUntilReady();
    },
    op: () => store.put(SMALL, { lifetime: lease, reads: 3, ttl: 600 }),
  },
  borrowRelease: {
    setup: async () => void (owned = await store.ownedProxy(SMALL)),
    op: async () => release(await borrow(owned as never)),
  },
  dedupeNew: { op: () => store.put({ ...SMALL, n: n++ }, { dedupe: true }) },
  dedupeExisting: { op: () => store.put(SMALL, { dedupe: true }) },
  futureSet: {
    op: async () => {
      const f = await store.future<typeof SMALL>({ ttl: 60 });
      await f.setResult(SMALL);
    },
  },
  futureWait: {
    op: async () => {
      const f = await store.future<typeof SMALL>({ ttl: 60 });
      await f.setResult(SMALL);
      await Future.fromRef<typeof SMALL>(toRef(f as never) as never).result();
    },
  },
};

try {
  console.log(`N=${N} per case${vgPid ? ', instructions from callgrind' : ''}`);
  for (const [name, c] of Object.entries(cases)) {
    if (only && !only.includes(name)) continue;
    await c.setup?.();
    if (name === 'getdel') n = N;
    // Warm-up (scripts loaded, connections up); not counted.
    for (let i = 0; i < 20 && name !== 'consume' && name !== 'consumeReads3' && name !== 'getdel'; i++) await c.op();
    await raw.config('RESETSTAT');
    if (vgPid) execFileSync('callgrind_control', ['-z', vgPid]);
    const t = performance.now();
    const count = name === 'consume' || name === 'consumeReads3' ? refs.length : N;
    for (let i = 0; i < count; i++) await c.op();
    const wall = (performance.now() - t) / count;
    const ir = vgPid ? vgInstructions() / count : undefined;
    const stats = (await raw.info('commandstats'))
      .split('\r\n')
      .filter((l) => l.startsWith('cmdstat_') && !/cmdstat_(config|info)\b/.test(l))
      .map((l) => {
        const m = /cmdstat_(\w+):calls=(\d+),usec=(\d+),usec_per_call=([\d.]+)/.exec(l);
        return m ? { cmd: m[1] as string, calls: Number(m[2]), usec: Number(m[3]), per: Number(m[4]) } : undefined;
      })
      .filter((s) => s !== undefined);
    const total = stats.reduce((s, x) => s + x.usec, 0);
    // Script time includes its inner calls: the total server time per op is that of the top-level commands.
    const inner = stats.filter((s) => !/^(evalsha|eval)$/.test(s.cmd));
    const scripts = stats.filter((s) => /^(evalsha|eval)$/.test(s.cmd));
    const topLevel = scripts.length ? scripts.reduce((s, x) => s + x.usec, 0) : total;
    console.log(
      `${name.padEnd(18)} wall ${(wall * 1000).toFixed(0).padStart(5)} µs/op  server ${(topLevel / count).toFixed(1).padStart(6)} µs/op` +
        `${ir ? `  ${Math.round(ir).toLocaleString('en-US').padStart(9)} Ir/op` : ''}  ` +
        scripts.map((s) => `${s.cmd} ${s.calls}x${s.per}`).join(' ') +
        '  | ' +
        inner.map((s) => `${s.cmd} ${(s.calls / count).toFixed(1)}/op ${s.per}`).join(', '),
    );
    if (name === 'consume' || name === 'consumeReads3') await new Promise((r) => setTimeout(r, 50));
  }
} finally {
  await lifetime?.close();
  await lease?.close();
  await maker.close();
  await store.close();
  raw.disconnect();
  await server?.stop();
}
