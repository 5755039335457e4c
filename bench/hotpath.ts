/**
 * Bench rows of issue 14 (the hot path): consume at c=1 and c=64, against
 * ProxyStore's per-op design, and the bytes a stream of consumes leaves in
 * Redis. Each row measures both of its sides in the same run, alternating.
 */
import { fromRef, resolve, toRef } from '../src/index.js';
import { SMALL, middle, rawKey, throughput, type BenchContext, type Case, type Row } from './cases.js';

/** An ephemeral proxy made by `maker`, consumed through its ref by `store` (the consumer's side of a handoff). */
async function proxyAndConsume(ctx: BenchContext, value: unknown = SMALL): Promise<unknown> {
  const p = await ctx.maker.proxy(value, { evict: true });
  return resolve(fromRef(toRef(p)));
}

async function setGetdel(ctx: BenchContext): Promise<unknown> {
  const k = rawKey(ctx);
  await ctx.raw.set(k, JSON.stringify(SMALL));
  return JSON.parse((await ctx.raw.getdel(k)) as string) as unknown;
}

/** Sum of MEMORY USAGE over the keys of `namespace` (bytes). */
async function bytesHeld(ctx: BenchContext): Promise<number> {
  let total = 0;
  let cursor = '0';
  do {
    const [next, keys] = await ctx.raw.scan(cursor, 'MATCH', `${ctx.namespace}:*`, 'COUNT', 1000);
    cursor = next;
    for (const k of keys) total += Number((await ctx.raw.memory('USAGE', k, 'SAMPLES', '0')) ?? 0);
  } while (cursor !== '0');
  return total;
}

export const hotPathCases: Case[] = [
  {
    name: 'consume: ephemeral proxy + consume through a ref vs SET + GETDEL (c=1)',
    async run(ctx) {
      const r = await ctx.latency(() => proxyAndConsume(ctx), () => setGetdel(ctx));
      const ratio = r.lib / r.raw;
      return { name: this.name, unit: 'ms', lib: r.lib, raw: r.raw, ratio, goal: '<= 1.3x', met: ratio <= 1.3, note: 'put script + consume script against SET + GETDEL' };
    },
  },
  {
    name: 'consume: ephemeral proxy + consume through a ref vs SET + GETDEL, 64 in flight (ops/s)',
    async run(ctx) {
      const ms = ctx.quick ? 200 : 1000;
      const libs: number[] = [];
      const raws: number[] = [];
      for (let round = 0; round < ctx.rounds / 2; round++) {
        const order = round % 2 === 0 ? (['lib', 'raw'] as const) : (['raw', 'lib'] as const);
        for (const side of order) {
          if (side === 'lib') libs.push(await throughput(() => proxyAndConsume(ctx), 64, ms));
          else raws.push(await throughput(() => setGetdel(ctx), 64, ms));
        }
      }
      const lib = middle(libs);
      const raw = middle(raws);
      // Goal as for c=1: at most 1.3x the time, that is at least 1/1.3 of the pairs per second.
      return { name: this.name, unit: 'ops/s', lib, raw, ratio: lib / raw, goal: '>= 0.77x', met: lib / raw >= 1 / 1.3 };
    },
  },
  {
    name: 'get ~100 B object, 64 in flight vs GET + JSON.parse (ops/s)',
    async run(ctx) {
      const ms = ctx.quick ? 200 : 1000;
      const keys = await ctx.store.putBatch(Array.from({ length: 1000 }, () => SMALL));
      const raws = Array.from({ length: 1000 }, () => rawKey(ctx));
      await ctx.raw.mset(...raws.flatMap((k) => [k, JSON.stringify(SMALL)]));
      let i = 0;
      let j = 0;
      const libs: number[] = [];
      const rawRates: number[] = [];
      for (let round = 0; round < ctx.rounds / 2; round++) {
        const order = round % 2 === 0 ? (['lib', 'raw'] as const) : (['raw', 'lib'] as const);
        for (const side of order) {
          if (side === 'lib') libs.push(await throughput(() => ctx.store.get(keys[i++ % keys.length] as string), 64, ms));
          else rawRates.push(await throughput(async () => JSON.parse((await ctx.raw.get(raws[j++ % raws.length] as string)) as string) as unknown, 64, ms));
        }
      }
      const lib = middle(libs);
      const raw = middle(rawRates);
      return { name: this.name, unit: 'ops/s', lib, raw, ratio: lib / raw, goal: '>= 0.9x', met: lib / raw >= 0.9, note: 'cacheSize 0: every get is a round trip' };
    },
  },
  {
    name: "consume vs ProxyStore's per-op design (SET, then GET + DEL per ephemeral resolve) (c=1)",
    async run(ctx) {
      const r = await ctx.latency(
        () => proxyAndConsume(ctx),
        async () => {
          const k = rawKey(ctx);
          await ctx.raw.set(k, JSON.stringify(SMALL));
          const v = JSON.parse((await ctx.raw.get(k)) as string) as unknown;
          await ctx.raw.del(k);
          return v;
        },
      );
      return {
        name: this.name,
        unit: 'ms',
        lib: r.lib,
        raw: r.raw,
        ratio: r.lib / r.raw,
        note: "the raw side is ProxyStore's RedisConnector for an ephemeral proxy (put = SET; resolve = GET, then evict = DEL), in raw commands; reported, no goal",
      };
    },
  },
  {
    name: 'consume: bytes held in Redis 1 s after 1,000 consumes of 1 MB objects',
    async run(ctx): Promise<Row> {
      const count = ctx.quick ? 50 : 1000;
      const value = Buffer.alloc(1024 * 1024, 7);
      const before = await bytesHeld(ctx);
      let consumed = 0;
      for (let i = 0; i < count; i++) consumed += ((await proxyAndConsume(ctx, value)) as Buffer).length;
      await new Promise((r) => setTimeout(r, 1000));
      const held = Math.max(0, (await bytesHeld(ctx)) - before);
      const ratio = held / consumed;
      return {
        name: this.name,
        unit: 'MB',
        lib: held / 1e6,
        ratio,
        goal: '<= 0.01x of consumed',
        met: ratio <= 0.01,
        note: `${(held / 1e6).toFixed(2)} MB held of ${(consumed / 1e6).toFixed(0)} MB consumed (sum of MEMORY USAGE of the namespace's keys: tombstones and any grace copy left)`,
      };
    },
  },
];
