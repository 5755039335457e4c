/**
 * The benchmark cases of issue 6, each next to its raw-ioredis baseline.
 * A case returns one row; `ratio` is lib/raw (for times: lower is better; for
 * throughputs: higher is better) and `met` says whether the goal holds.
 */
import { execFile, fork, spawn } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { serialize as v8serialize, deserialize as v8deserialize } from 'node:v8';
import type { Redis } from 'ioredis';
import { Packr } from 'msgpackr';
import {
  ContextLifetime,
  Future,
  LeaseLifetime,
  RedisConnector,
  Store,
  borrow,
  drop,
  fromRef,
  getKey,
  mutBorrow,
  release,
  resolve,
  toRef,
  type FutureRef,
  type OwnedProxy,
  type ProxyRef,
} from '../src/index.js';
import { existingPool } from '../src/future/pool.js';

const execFileAsync = promisify(execFile);
const here = dirname(fileURLToPath(import.meta.url));

export interface Row {
  name: string;
  unit: 'ms' | 'ops/s' | 'MB/s' | 'x' | 'MB' | 'connections';
  lib: number;
  raw?: number;
  ratio?: number;
  goal?: string;
  met?: boolean;
  note?: string;
}

export interface BenchContext {
  quick: boolean;
  raw: Redis;
  store: Store;
  /** A second store of the same name and namespace, on its own connection. */
  maker: Store;
  namespace: string;
  url: string;
  rounds: number;
  roundMs: number;
  /** Median latency (ms) of each function, alternating rounds. */
  latency(
    lib: () => Promise<unknown>,
    raw: () => Promise<unknown>,
    opts?: { keep?: boolean },
  ): Promise<{ lib: number; raw: number }>;
  /** Median wall time (ms) of one call of each, alternating rounds. */
  timed(lib: () => Promise<unknown>, raw: () => Promise<unknown>): Promise<{ lib: number; raw: number }>;
  fromRefResolve(p: unknown): Promise<unknown>;
  /** Set by the 1,000-futures case for the connections row. */
  futurePool?: { opened: number; peak: number; bound: number };
}

export interface Case {
  name: string;
  run(ctx: BenchContext): Promise<Row>;
}

/** About 100 bytes as JSON. */
export const SMALL = { id: 12345, name: 'widget', tags: ['a', 'b', 'c'], price: 9.99, stock: 42, at: '2026-11-26T12:00:00Z' };

function atMost(name: string, unit: Row['unit'], lib: number, raw: number, goal: number, note?: string): Row {
  const ratio = lib / raw;
  return { name, unit, lib, raw, ratio, goal: `<= ${goal}x`, met: ratio <= goal, ...(note ? { note } : {}) };
}

function atLeast(name: string, unit: Row['unit'], lib: number, raw: number, goal: number, note?: string): Row {
  const ratio = lib / raw;
  return { name, unit, lib, raw, ratio, goal: `>= ${goal}x`, met: ratio >= goal, ...(note ? { note } : {}) };
}

let rawCounter = 0;
/** A fresh key for the raw ioredis side of a row. */
export const rawKey = (ctx: BenchContext) => `${ctx.namespace}-raw:${rawCounter++}`;

/** The middle of the rounds' figures (the upper one of an even count; no averaging). */
export const middle = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] as number;

/** Keep `concurrency` calls in flight for `ms`; completed calls per second. */
/**
 * Peak RSS growth (bytes) of reading `key` with the library and `rawKey`
 * with raw ioredis, each in a fresh process (bench/rss-child.ts), the two
 * alternating: the least of `rounds` runs of each.
 */
export async function rssGrowth(url: string, namespace: string, key: string, rawKey: string, rounds: number): Promise<{ lib: number; raw: number; rounds: number }> {
  const measure = async (mode: 'lib' | 'raw'): Promise<number> => {
    const { stdout } = await execFileAsync(
      process.execPath,
      ['--import', 'tsx', '--expose-gc', join(here, 'rss-child.ts'), mode, url, namespace, mode === 'lib' ? key : rawKey],
      { maxBuffer: 1 << 20 },
    );
    return Number(JSON.parse(stdout.trim().split('\n').pop() as string).growth);
  };
  const libs: number[] = [];
  const raws: number[] = [];
  for (let i = 0; i < rounds; i++) {
    libs.push(await measure('lib'));
    raws.push(await measure('raw'));
  }
  return { lib: Math.min(...libs), raw: Math.min(...raws), rounds };
}

export async function throughput(fn: () => Promise<unknown>, concurrency: number, ms: number): Promise<number> {
  let done = 0;
  const until = performance.now() + ms;
  const start = performance.now();
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (performance.now() < until) {
        await fn();
        done++;
      }
    }),
  );
  return (done * 1000) / (performance.now() - start);
}

/** The refs of round `i` of the handoff benchmark (as bench/future-child.ts derives them). */
function handoffRef(ns: string, run: string, i: number, side: 'a' | 'b'): FutureRef {
  return { __proxystore__: 1, kind: 'future', store: 'bench', namespace: ns, key: `handoff-${run}-${i}-${side}`, ttl: 60 };
}
let handoffRuns = 0;

/**
 * Median time (ms) of one handoff between this process and a child (half a
 * ping-pong: set here, woken there, set there, woken here), `count` rounds
 * after `warmup`: `lib` through futures, `raw` through LPUSH/BLPOP.
 */
async function handoff(ctx: BenchContext, mode: 'lib' | 'raw', warmup: number, count: number): Promise<number> {
  const total = warmup + count;
  const run = `${process.pid}r${handoffRuns++}`;
  const child = spawn(process.execPath, ['--import', 'tsx', join(here, 'future-child.ts'), mode, ctx.url, ctx.namespace, String(total), run], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  let out = '';
  const seen = (word: string) =>
    new Promise<void>((res, rej) => {
      const check = () => {
        if (out.includes(word)) res();
      };
      child.stdout.on('data', (d: Buffer) => {
        out += d.toString();
        check();
      });
      child.once('exit', (code) => (out.includes(word) ? res() : rej(new Error(`future-child ${mode} exited with ${code}`))));
      check();
    });
  await seen('ready');
  const times: number[] = [];
  const blocking = mode === 'raw' ? ctx.raw.duplicate() : undefined;
  for (let i = 0; i < total; i++) {
    // Not timed: let the other side's wait block first (set -> wake of a waiting consumer).
    await new Promise((r) => setTimeout(r, 2));
    const t = performance.now();
    if (mode === 'lib') {
      const back = Future.fromRef(handoffRef(ctx.namespace, run, i, 'b')).result();
      await Future.fromRef(handoffRef(ctx.namespace, run, i, 'a')).setResult(SMALL);
      await back;
    } else {
      const back = (blocking as typeof ctx.raw).blpop(`${ctx.namespace}-raw:handoff-b`, 0);
      await ctx.raw.lpush(`${ctx.namespace}-raw:handoff-a`, JSON.stringify(SMALL));
      JSON.parse(((await back) as [string, string])[1]);
    }
    if (i >= warmup) times.push((performance.now() - t) / 2);
  }
  await seen('done');
  blocking?.disconnect();
  const sorted = times.sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)] as number;
}

export const cases: Case[] = [
  {
    name: 'put ~100 B object vs SET (c=1)',
    async run(ctx) {
      const r = await ctx.latency(
        () => ctx.store.put(SMALL),
        () => ctx.raw.set(rawKey(ctx), JSON.stringify(SMALL)),
      );
      return atMost(this.name, 'ms', r.lib, r.raw, 1.15);
    },
  },
  {
    name: 'get ~100 B object vs GET (c=1)',
    async run(ctx) {
      const key = await ctx.store.put(SMALL);
      const rk = rawKey(ctx);
      await ctx.raw.set(rk, JSON.stringify(SMALL));
      const r = await ctx.latency(
        async () => {
          if ((await ctx.store.get(key)) === undefined) throw new Error('missing');
        },
        async () => JSON.parse((await ctx.raw.get(rk)) as string) as unknown,
        { keep: true },
      );
      return atMost(this.name, 'ms', r.lib, r.raw, 1.15);
    },
  },
  {
    name: 'proxy + resolve in a 2nd store vs SET + GET',
    async run(ctx) {
      const r = await ctx.latency(
        async () => ctx.fromRefResolve(await ctx.maker.proxy(SMALL)),
        async () => {
          const k = rawKey(ctx);
          await ctx.raw.set(k, JSON.stringify(SMALL));
          return JSON.parse((await ctx.raw.get(k)) as string) as unknown;
        },
      );
      return atMost(this.name, 'ms', r.lib, r.raw, 1.15);
    },
  },
  {
    name: 'put with a ContextLifetime vs SET (c=1)',
    async run(ctx) {
      const lifetime = new ContextLifetime(ctx.store);
      await lifetime.waitUntilReady();
      const r = await ctx.latency(
        () => ctx.store.put(SMALL, { lifetime }),
        () => ctx.raw.set(rawKey(ctx), JSON.stringify(SMALL)),
        { keep: true },
      );
      await lifetime.close();
      return atMost(this.name, 'ms', r.lib, r.raw, 1.15, 'one script call: data and membership together');
    },
  },
  {
    name: 'put with reads + lifetime + ttl vs plain SET (c=1)',
    async run(ctx) {
      const lifetime = new LeaseLifetime(ctx.store, { expiry: 3600 });
      await lifetime.waitUntilReady();
      const r = await ctx.latency(
        () => ctx.store.put(SMALL, { lifetime, reads: 3, ttl: 600 }),
        () => ctx.raw.set(rawKey(ctx), JSON.stringify(SMALL)),
        { keep: true },
      );
      await lifetime.close();
      return atMost(this.name, 'ms', r.lib, r.raw, 1.2, 'one script call: data, budget, own end and membership together');
    },
  },
  {
    name: 'dedupe put of an already-stored 10 MB value vs SET of the same bytes (c=1)',
    async run(ctx) {
      const big = Buffer.alloc(10 * 1024 * 1024, 5);
      // One raw key, overwritten: memory stays flat. (Each round's cleanup deletes the object: the
      // round's first put writes it again, one slow sample that the median ignores.)
      const rk = rawKey(ctx);
      const r = await ctx.latency(
        () => ctx.store.put(big, { dedupe: true }),
        () => ctx.raw.set(rk, big),
      );
      return atMost(this.name, 'ms', r.lib, r.raw, 0.3, 'hash (SHA-256) of the stored bytes, then one script call with the hash alone');
    },
  },
  {
    name: 'dedupe put of a new ~100 B value vs SET (c=1)',
    async run(ctx) {
      let n = 0;
      const r = await ctx.latency(
        () => ctx.store.put({ ...SMALL, n: n++ }, { dedupe: true }),
        () => ctx.raw.set(rawKey(ctx), JSON.stringify({ ...SMALL, n: n++ })),
      );
      return atMost(this.name, 'ms', r.lib, r.raw, 1.3, 'one script call with the bytes: the object and its first reference');
    },
  },
  {
    name: 'consume of a reads: 3 object vs GETDEL (c=1)',
    async run(ctx) {
      // Objects to consume, refilled when used up (a refill is one slow sample among thousands: the median ignores it).
      const refs: ProxyRef[] = [];
      const rawKeys: string[] = [];
      const REFILL = 1000;
      const lib = async () => {
        if (refs.length === 0) {
          const made = await ctx.maker.proxyBatch(Array.from({ length: REFILL }, () => SMALL), { reads: 3 });
          for (const p of made) refs.push(toRef(p), toRef(p), toRef(p));
        }
        // As a consumer in another process: a fresh proxy of the ref, resolved (one consume script).
        return resolve(fromRef(refs.pop() as ProxyRef));
      };
      const raw = async () => {
        if (rawKeys.length === 0) {
          const batch = Array.from({ length: 3 * REFILL }, () => rawKey(ctx));
          await ctx.raw.mset(...batch.flatMap((k) => [k, JSON.stringify(SMALL)]));
          rawKeys.push(...batch);
        }
        return JSON.parse((await ctx.raw.getdel(rawKeys.pop() as string)) as string) as unknown;
      };
      const r = await ctx.latency(lib, raw, { keep: true });
      return atMost(this.name, 'ms', r.lib, r.raw, 1.3, 'one script call per read; the third takes the object');
    },
  },
  {
    name: 'borrow + release vs two SETs (c=1)',
    async run(ctx) {
      const owned = await ctx.store.ownedProxy(SMALL);
      const r = await ctx.latency(
        async () => release(await borrow(owned)),
        async () => {
          await ctx.raw.set(rawKey(ctx), '1');
          await ctx.raw.set(rawKey(ctx), '2');
        },
        { keep: true },
      );
      await drop(owned);
      return atMost(this.name, 'ms', r.lib, r.raw, 1.25, 'two script calls (borrow, release) against two SETs');
    },
  },
  {
    name: 'put throughput, 64 concurrent vs SET',
    async run(ctx) {
      const ms = ctx.quick ? 200 : 1000;
      const libs: number[] = [];
      const raws: number[] = [];
      for (let round = 0; round < ctx.rounds / 2; round++) {
        libs.push(await throughput(() => ctx.store.put(SMALL), 64, ms));
        raws.push(await throughput(() => ctx.raw.set(rawKey(ctx), JSON.stringify(SMALL)), 64, ms));
      }
      return atLeast(this.name, 'ops/s', middle(libs), middle(raws), 0.9);
    },
  },
  {
    name: 'putBatch 10,000 vs pipelined SET',
    async run(ctx) {
      const values = Array.from({ length: 10_000 }, (_, i) => ({ ...SMALL, id: i }));
      const r = await ctx.timed(
        () => ctx.store.putBatch(values),
        async () => {
          const p = ctx.raw.pipeline();
          for (const v of values) p.set(rawKey(ctx), JSON.stringify(v));
          await p.exec();
        },
      );
      return atLeast(this.name, 'ops/s', 10_000_000 / r.lib, 10_000_000 / r.raw, 0.8);
    },
  },
  {
    name: '64 MB array of numbers: msgpackr vs JSON (encode + decode)',
    async run(ctx) {
      const n = (64 * 1024 * 1024) / 8;
      const data = Array.from({ length: n }, (_, i) => i * 0.5 + 0.25);
      const packr = new Packr({ structuredClone: true, useBigIntExtension: true });
      const time = (fn: () => unknown) => {
        const t = performance.now();
        fn();
        return performance.now() - t;
      };
      const reps = ctx.quick ? 1 : 3;
      const run = (enc: () => Uint8Array | string, dec: (x: never) => unknown) => {
        const ts: number[] = [];
        let size = 0;
        for (let i = 0; i < reps; i++) {
          const box: { v: Uint8Array | string } = { v: '' };
          const te = time(() => (box.v = enc()));
          const encoded = box.v;
          size = typeof encoded === 'string' ? Buffer.byteLength(encoded) : encoded.byteLength;
          const td = time(() => dec(encoded as never));
          ts.push(te + td);
        }
        return { ms: Math.min(...ts), mb: size / 1e6 };
      };
      const m = run(() => packr.pack(data), (b: Buffer) => packr.unpack(b));
      const j = run(() => JSON.stringify(data), (s: string) => JSON.parse(s));
      const v = run(() => v8serialize(data), (b: Buffer) => v8deserialize(b));
      return {
        name: this.name,
        unit: 'ms',
        lib: m.ms,
        raw: j.ms,
        ratio: m.ms / j.ms,
        goal: 'report',
        note: `msgpackr ${m.ms.toFixed(0)} ms (${m.mb.toFixed(1)} MB), JSON ${j.ms.toFixed(0)} ms (${j.mb.toFixed(1)} MB), v8.serialize ${v.ms.toFixed(0)} ms (${v.mb.toFixed(1)} MB), for ${n.toLocaleString('en-US')} doubles`,
      };
    },
  },
  {
    name: 'close a ContextLifetime of 100,000 keys vs pipelined UNLINK',
    async run(ctx) {
      const n = ctx.quick ? 20_000 : 100_000;
      const values = Array.from({ length: n }, (_, i) => i);
      const libTimes: number[] = [];
      const rawTimes: number[] = [];
      const oneByOne: number[] = [];
      for (let round = 0; round < (ctx.quick ? 1 : 3); round++) {
        const lifetime = new ContextLifetime(ctx.store);
        await ctx.store.putBatch(values, { lifetime });
        let t = performance.now();
        await lifetime.close();
        libTimes.push(performance.now() - t);

        const keys = await ctx.store.putBatch(values);
        const redisKeys = keys.map((k) => ctx.store.connector.dataKey(k));
        t = performance.now();
        const p = ctx.raw.pipeline();
        for (const k of redisKeys) p.unlink(k);
        await p.exec();
        rawTimes.push(performance.now() - t);

        // What ProxyStore's ContextLifetime.close does: one evict per key, one after the other.
        const few = await ctx.store.putBatch(values.slice(0, Math.min(n, 5_000)));
        t = performance.now();
        for (const k of few) await ctx.store.evict(k);
        oneByOne.push(((performance.now() - t) * n) / few.length);
      }
      const lib = middle(libTimes);
      const sequential = middle(oneByOne);
      return atMost(
        `close a ContextLifetime of ${n.toLocaleString('en-US')} keys vs pipelined UNLINK`,
        'ms',
        lib,
        middle(rawTimes),
        1.5,
        `evicting them one call at a time (ProxyStore's close) would take ${sequential.toFixed(0)} ms (extrapolated from 5,000): ${(sequential / lib).toFixed(1)}x the lifetime's close`,
      );
    },
  },
  {
    name: 'RSS growth resolving a 64 MB Buffer (x payload)',
    async run(ctx) {
      const size = 64 * 1024 * 1024;
      const key = await ctx.store.put(Buffer.alloc(size, 1));
      const rk = rawKey(ctx);
      await ctx.raw.set(rk, Buffer.alloc(size, 1));
      const growth = await rssGrowth(ctx.url, ctx.namespace, key, rk, ctx.quick ? 1 : 3);
      const lib = growth.lib / size;
      const raw = growth.raw / size;
      return {
        name: this.name,
        unit: 'x',
        lib,
        raw,
        ratio: lib / raw,
        goal: 'lib <= 2.5x payload',
        met: lib <= 2.5,
        note: `peak RSS growth over the payload size, best of ${growth.rounds} fresh processes each`,
      };
    },
  },
  {
    name: 'future set -> wake across 2 processes vs BLPOP handoff',
    async run(ctx) {
      const warmup = ctx.quick ? 20 : 200;
      const count = ctx.quick ? 100 : 1000;
      const libs: number[] = [];
      const raws: number[] = [];
      for (let round = 0; round < (ctx.quick ? 1 : 3); round++) {
        libs.push(await handoff(ctx, 'lib', warmup, count));
        raws.push(await handoff(ctx, 'raw', warmup, count));
      }
      return atMost(
        this.name,
        'ms',
        middle(libs),
        middle(raws),
        1.3,
        'median of one handoff (half a ping-pong between two processes, ~100 B object; each side blocked in its wait before the other sets: a 2 ms pause before each round, not timed), median of the rounds',
      );
    },
  },
  {
    name: '1,000 futures set + awaited at once vs 1,000 SET + GET',
    async run(ctx) {
      const n = 1000;
      const libOnce = async () => {
        const futures = await Promise.all(Array.from({ length: n }, () => ctx.store.future<typeof SMALL>({ ttl: 60 })));
        const waits = futures.map((f) => f.result());
        await Promise.all(futures.map((f) => f.setResult(SMALL)));
        await Promise.all(waits);
      };
      const rawOnce = async () => {
        const keys = Array.from({ length: n }, () => rawKey(ctx));
        await Promise.all(keys.map((k) => ctx.raw.set(k, JSON.stringify(SMALL))));
        await Promise.all(keys.map(async (k) => JSON.parse((await ctx.raw.get(k)) as string) as unknown));
      };
      await libOnce(); // warm-up (connections opened)
      const r = await ctx.timed(libOnce, rawOnce);
      const lib = (n * 1000) / r.lib;
      const raw = (n * 1000) / r.raw;
      const stats = existingPool(ctx.store.connector)?.stats();
      ctx.futurePool = { opened: stats?.opened ?? 0, peak: stats?.peak ?? 0, bound: ctx.store.connector.maxBlockingConnections };
      return { name: this.name, unit: 'ops/s', lib, raw, ratio: lib / raw, note: 'futures per second (each created, awaited, set, woken) vs SET+GET pairs per second; reported, no goal' };
    },
  },
  {
    name: '1,000 futures awaited at once: blocking connections opened',
    async run(ctx) {
      const pool = ctx.futurePool;
      if (!pool) throw new Error('run the 1,000 futures case first');
      return {
        name: this.name,
        unit: 'connections',
        lib: pool.opened,
        goal: `<= ${pool.bound} (maxBlockingConnections)`,
        met: pool.opened <= pool.bound,
        note: `opened ${pool.opened}, at most ${pool.peak} open at once, over every run of the previous case`,
      };
    },
  },
];

/** A registered store with the cache on (its own connection and tracking connection), closed by the caller. */
async function cachingStore(ctx: BenchContext, name: string, cacheSize = 16): Promise<Store> {
  const store = new Store(name, new RedisConnector({ url: ctx.url, namespace: ctx.namespace }), { register: true, cacheSize });
  await store.ready();
  return store;
}

function percentile(xs: number[], p: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil((p / 100) * s.length) - 1))] as number;
}

let cacheStores = 0;

/** Resolve of a hot object through the cache (a new proxy from its ref each time) against GET + JSON.parse. */
async function hotResolve(ctx: BenchContext, name: string, value: unknown, goal: number): Promise<Row> {
  const cache = await cachingStore(ctx, `bench-cache-${++cacheStores}`);
  try {
    const p = await cache.proxy(value, { populateTarget: false });
    const ref = toRef(p);
    const rk = rawKey(ctx);
    await ctx.raw.set(rk, JSON.stringify(value));
    await resolve(fromRef(ref)); // now cached
    const r = await ctx.latency(
      async () => resolve(fromRef(ref)),
      async () => JSON.parse((await ctx.raw.get(rk)) as string) as unknown,
      { keep: true },
    );
    const speedup = r.raw / r.lib;
    return {
      name,
      unit: 'ms',
      lib: r.lib,
      raw: r.raw,
      ratio: r.lib / r.raw,
      goal: `>= ${goal}x faster`,
      met: speedup >= goal,
      note: `${speedup.toFixed(0)}x faster than GET + JSON.parse: the resolve of a proxy revived from its ref, served by the cache (cacheSize 16), never stale beyond the invalidation lag row`,
    };
  } finally {
    await cache.close();
  }
}

export const cacheCases: Case[] = [
  {
    name: 'cache: resolve of a hot ~100 B object vs GET + JSON.parse (c=1)',
    run: (ctx) => hotResolve(ctx, 'cache: resolve of a hot ~100 B object vs GET + JSON.parse (c=1)', SMALL, 20),
  },
  {
    name: 'cache: resolve of a hot 10 MB array vs GET + JSON.parse (c=1)',
    run(ctx) {
      // 1,400,000 integers: about 10 MB as JSON.
      const big = Array.from({ length: 1_400_000 }, (_, i) => (i * 7919) % 1_000_000);
      return hotResolve(ctx, this.name, big, 100);
    },
  },
  {
    name: 'cache: update -> invalidation lag across processes (p50, p99)',
    async run(ctx) {
      const reader = await cachingStore(ctx, 'bench-lag');
      const child = fork(join(here, 'cache-child.ts'), [ctx.url, ctx.namespace, 'bench-lag'], { execArgv: ['--import', 'tsx'] });
      const messages: Record<string, unknown>[] = [];
      const waiters: (() => void)[] = [];
      child.on('message', (m) => {
        messages.push(m as Record<string, unknown>);
        for (const w of waiters.splice(0)) w();
      });
      const next = async (pred: (m: Record<string, unknown>) => boolean): Promise<Record<string, unknown>> => {
        for (;;) {
          const i = messages.findIndex(pred);
          if (i >= 0) return messages.splice(i, 1)[0] as Record<string, unknown>;
          if (child.exitCode !== null) throw new Error(`the writer process exited (code ${child.exitCode})`);
          await new Promise<void>((r) => waiters.push(r));
        }
      };
      const now = () => performance.timeOrigin + performance.now();
      const owned = (await reader.ownedProxy({ v: 0 })) as unknown as OwnedProxy<{ v: number }>;
      const key = getKey(owned);
      try {
        child.on('exit', () => {
          for (const w of waiters.splice(0)) w();
        });
        await next((m) => m.up === true);
        const writer = await mutBorrow(owned);
        child.send({ ref: toRef(writer) });
        await next((m) => m.ready === true);
        const fromEnd: number[] = [];
        const fromStart: number[] = [];
        const n = ctx.quick ? 20 : 300;
        for (let i = 1; i <= n; i++) {
          const deadline = Date.now() + 10_000;
          const bounded = () => {
            if (Date.now() > deadline || child.exitCode !== null) throw new Error(`lag round ${i}: stuck (writer exit code ${child.exitCode})`);
          };
          // Cached again (the previous round's invalidation dropped it).
          while (!reader.isCached(key)) {
            bounded();
            await reader.get(key);
          }
          child.send({ go: i });
          while (reader.isCached(key)) {
            bounded();
            await new Promise((r) => setImmediate(r));
          }
          const seen = now();
          const done = await next((m) => m.i === i);
          // Dropped before the update was even called (a lease renewal announces the object's keys too): not a sample.
          if (seen < (done.start as number)) continue;
          fromEnd.push(seen - (done.end as number));
          fromStart.push(seen - (done.start as number));
        }
        child.send({ stop: true });
        await next((m) => m.stopped === true);
        const p50 = percentile(fromEnd, 50);
        const p99 = percentile(fromEnd, 99);
        return {
          name: this.name,
          unit: 'ms',
          lib: p50,
          raw: p99,
          goal: 'report',
          note:
            `proxystore-redis column: p50, raw column: p99, of (entry dropped in the reader) - (update returned in the writer), ${n} updates; ` +
            `negative: the reader had it before the writer's call returned. From the update's call instead: p50 ${percentile(fromStart, 50).toFixed(3)} ms, p99 ${percentile(fromStart, 99).toFixed(3)} ms`,
        };
      } finally {
        child.kill();
        await drop(owned).catch(() => undefined);
        await reader.close();
      }
    },
  },
  {
    name: 'cache: put + get throughput, 64 concurrent, cache on vs off',
    async run(ctx) {
      const on = await cachingStore(ctx, 'bench-tracking-on', 16);
      const off = await cachingStore(ctx, 'bench-tracking-off', 0);
      try {
        const ms = ctx.quick ? 200 : 1000;
        const ons: number[] = [];
        const offs: number[] = [];
        // Each op: a put of a new object and a get of it (a miss: the cost is the tracking, not a hit).
        const op = (s: Store) => async () => {
          const k = await s.put(SMALL);
          if ((await s.get(k)) === undefined) throw new Error('missing');
        };
        for (let round = 0; round < ctx.rounds / 2; round++) {
          const order = round % 2 === 0 ? [on, off] : [off, on];
          for (const s of order) (s === on ? ons : offs).push(await throughput(op(s), 64, ms));
        }
        const row = atLeast(this.name, 'ops/s', middle(ons), middle(offs), 0.95);
        return { ...row, note: 'proxystore-redis column: cacheSize 16 (every SET is announced on the tracking connection), raw column: cacheSize 0; goal: at most 5% slower' };
      } finally {
        await on.close();
        await off.close();
      }
    },
  },
];
