/**
 * The benchmark cases of issue 6, each next to its raw-ioredis baseline.
 * A case returns one row; `ratio` is lib/raw (for times: lower is better; for
 * throughputs: higher is better) and `met` says whether the goal holds.
 */
import { execFile } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { serialize as v8serialize, deserialize as v8deserialize } from 'node:v8';
import type { Redis } from 'ioredis';
import { Packr } from 'msgpackr';
import { ContextLifetime, LeaseLifetime, borrow, drop, fromRef, release, resolve, toRef, type ProxyRef, type Store } from '../src/index.js';

const execFileAsync = promisify(execFile);
const here = dirname(fileURLToPath(import.meta.url));

export interface Row {
  name: string;
  unit: 'ms' | 'ops/s' | 'MB/s' | 'x' | 'MB';
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
const rawKey = (ctx: BenchContext) => `${ctx.namespace}-raw:${rawCounter++}`;

/** Keep `concurrency` calls in flight for `ms`; completed calls per second. */
async function throughput(fn: () => Promise<unknown>, concurrency: number, ms: number): Promise<number> {
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
      return atMost(this.name, 'ms', r.lib, r.raw, 1.3);
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
      return atMost(this.name, 'ms', r.lib, r.raw, 1.3, 'one script call: data and membership together');
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
      return atMost(this.name, 'ms', r.lib, r.raw, 1.3, 'two script calls (borrow, release) against two SETs');
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
      const med = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] as number;
      return atLeast(this.name, 'ops/s', med(libs), med(raws), 0.85);
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
    name: '64 MB Buffer put + get vs SET + GET',
    async run(ctx) {
      const size = 64 * 1024 * 1024;
      const buf = Buffer.alloc(size, 7);
      const r = await ctx.timed(
        async () => {
          const k = await ctx.store.put(buf);
          const back = await ctx.store.get<Buffer>(k);
          if (back?.length !== size) throw new Error('bad length');
        },
        async () => {
          const k = rawKey(ctx);
          await ctx.raw.set(k, buf);
          const back = await ctx.raw.getBuffer(k);
          if (back?.length !== size) throw new Error('bad length');
        },
      );
      const mb = (2 * size) / 1e6; // bytes moved: up and down
      return atLeast(this.name, 'MB/s', (mb * 1000) / r.lib, (mb * 1000) / r.raw, 0.9);
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
      const med = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] as number;
      const lib = med(libTimes);
      const sequential = med(oneByOne);
      return atMost(
        `close a ContextLifetime of ${n.toLocaleString('en-US')} keys vs pipelined UNLINK`,
        'ms',
        lib,
        med(rawTimes),
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
      const measure = async (mode: 'lib' | 'raw'): Promise<number> => {
        const { stdout } = await execFileAsync(
          process.execPath,
          ['--import', 'tsx', '--expose-gc', join(here, 'rss-child.ts'), mode, ctx.url, ctx.namespace, mode === 'lib' ? key : rk],
          { maxBuffer: 1 << 20 },
        );
        return Number(JSON.parse(stdout.trim().split('\n').pop() as string).growth);
      };
      const libs: number[] = [];
      const raws: number[] = [];
      for (let i = 0; i < (ctx.quick ? 1 : 3); i++) {
        libs.push(await measure('lib'));
        raws.push(await measure('raw'));
      }
      const lib = Math.min(...libs) / size;
      const raw = Math.min(...raws) / size;
      return {
        name: this.name,
        unit: 'x',
        lib,
        raw,
        ratio: lib / raw,
        goal: 'lib <= 2.5x payload',
        met: lib <= 2.5,
        note: `peak RSS growth over the payload size, best of ${libs.length} fresh processes each`,
      };
    },
  },
];
