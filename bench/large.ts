/**
 * Bench rows of issue 16 (objects of any size, DESIGN §7.4): chunked values
 * side by side with raw ioredis. They need gigabytes of Redis memory, so
 * each row starts its own redis-server (scripts/local-redis.ts) and stops
 * it, whatever Redis the rest of the bench uses. `--quick` shrinks the sizes
 * (each still several chunks of the default `chunkSize`); only `--only`
 * skips them.
 */
import { execFile } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { Redis } from 'ioredis';
import { RedisConnector, Store } from '../src/index.js';
import { startRedisServer, type LocalRedis } from '../scripts/local-redis.js';
import { middle, rssGrowth, type BenchContext, type Case, type Row } from './cases.js';

const execFileAsync = promisify(execFile);
const here = dirname(fileURLToPath(import.meta.url));
const MB = 1024 * 1024;

/** A redis-server of this row's own, a store (default options) and a raw client on it; all closed by `fn`'s end. */
async function onOwnRedis<T>(ctx: BenchContext, fn: (r: { server: LocalRedis; store: Store; raw: Redis; namespace: string }) => Promise<T>): Promise<T> {
  const server = await startRedisServer();
  const namespace = `${ctx.namespace}-large`;
  const store = new Store('bench-large', new RedisConnector({ url: server.url, namespace }), { cacheSize: 0 });
  const raw = new Redis(server.url);
  try {
    await store.ready();
    return await fn({ server, store, raw, namespace });
  } finally {
    await store.close();
    raw.disconnect();
    await server.stop();
  }
}

/** Run `file` in a fresh Node process (tsx, --expose-gc); its last stdout line, parsed. */
async function child<T>(file: string, args: string[]): Promise<T> {
  const { stdout } = await execFileAsync(process.execPath, ['--import', 'tsx', '--expose-gc', join(here, file), ...args], {
    maxBuffer: 1 << 20,
  });
  return JSON.parse(stdout.trim().split('\n').pop() as string) as T;
}

async function flush(raw: Redis): Promise<void> {
  await raw.flushall();
}

const mbps = (bytes: number, ms: number) => bytes / 1e6 / (ms / 1000);

export const largeCases: Case[] = [
  {
    name: 'large: 64 MB Buffer put + get vs SET + GET',
    async run(ctx) {
      const size = (ctx.quick ? 16 : 64) * MB;
      return onOwnRedis(ctx, async ({ store, raw, namespace }) => {
        const buf = Buffer.alloc(size, 7);
        const libs: number[] = [];
        const raws: number[] = [];
        let n = 0;
        const lib = async () => {
          const k = await store.put(buf);
          const back = await store.get<Buffer>(k);
          if (back?.length !== size) throw new Error('bad length');
        };
        const rawSide = async () => {
          const k = `${namespace}-raw:${n++}`;
          await raw.set(k, buf);
          const back = await raw.getBuffer(k);
          if (back?.length !== size) throw new Error('bad length');
        };
        await lib(); // warm-up: scripts loaded, pools sized
        await rawSide();
        await flush(raw);
        // More rounds than the small rows: one round is two 64 MB transfers per side, and the
        // machine's load moves the figures by 30% from one minute to the next.
        const rounds = ctx.quick ? ctx.rounds : 16;
        for (let round = 0; round < rounds; round++) {
          const order = round % 2 === 0 ? [lib, rawSide] : [rawSide, lib];
          for (const fn of order) {
            const t = performance.now();
            await fn();
            (fn === lib ? libs : raws).push(performance.now() - t);
            await flush(raw);
          }
        }
        const libMBs = mbps(2 * size, middle(libs));
        const rawMBs = mbps(2 * size, middle(raws));
        const ratio = libMBs / rawMBs;
        const chunkSize = store.chunkSize;
        return {
          name: ctx.quick ? `large: ${size / MB} MB Buffer put + get vs SET + GET` : this.name,
          unit: 'MB/s',
          lib: libMBs,
          raw: rawMBs,
          ratio,
          goal: '>= 1.0x (1.2x stretch)',
          met: ratio >= 1,
          note: `bytes up and down per second, middle of ${rounds} alternating rounds; chunkSize ${chunkSize / MB} MB (default); own redis-server`,
        } satisfies Row;
      });
    },
  },
  {
    name: 'large: 1 GB putStream + getStream into SHA-256 vs 4 x 256 MB SET + GET',
    async run(ctx) {
      const total = (ctx.quick ? 32 : 1024) * MB;
      const parts = 4;
      return onOwnRedis(ctx, async ({ server, namespace }) => {
        type Out = { ms: number; growth: number; hash: string; bytes: number };
        const libs: Out[] = [];
        const raws: Out[] = [];
        const rounds = ctx.quick ? 1 : 3;
        for (let round = 0; round < rounds; round++) {
          const order = round % 2 === 0 ? (['stream-lib', 'stream-raw'] as const) : (['stream-raw', 'stream-lib'] as const);
          for (const mode of order) {
            const out = await child<Out>('large-child.ts', [mode, server.url, namespace, String(total), String(parts)]);
            (mode === 'stream-lib' ? libs : raws).push(out);
          }
        }
        const hashes = new Set([...libs, ...raws].map((o) => o.hash));
        if (hashes.size !== 1) throw new Error(`the two sides read back different bytes: ${[...hashes].join(', ')}`);
        const lib = mbps(2 * total, middle(libs.map((o) => o.ms)));
        const raw = mbps(2 * total, middle(raws.map((o) => o.ms)));
        const ratio = lib / raw;
        const growth = Math.max(...libs.map((o) => o.growth)) / MB;
        const rawGrowth = Math.max(...raws.map((o) => o.growth)) / MB;
        const name = ctx.quick ? `large: ${total / MB} MB putStream + getStream into SHA-256 vs 4 x ${total / parts / MB} MB SET + GET` : this.name;
        return {
          name,
          unit: 'MB/s',
          lib,
          raw,
          ratio,
          goal: '>= 0.9x, RSS growth <= 64 MB',
          met: ratio >= 0.9 && growth <= 64,
          note:
            `bytes up and down per second, each side in a fresh process, middle of ${rounds} alternating rounds (same SHA-256 on both sides); ` +
            `library process peak RSS growth ${growth.toFixed(0)} MB (worst round; best ${(Math.min(...libs.map((o) => o.growth)) / MB).toFixed(0)} MB), ` +
            `raw ioredis ${rawGrowth.toFixed(0)} MB; own redis-server`,
        } satisfies Row;
      });
    },
  },
  {
    name: 'large: RSS growth getting a 256 MB chunked Buffer (x payload)',
    async run(ctx) {
      const size = (ctx.quick ? 32 : 256) * MB;
      return onOwnRedis(ctx, async ({ server, store, raw, namespace }) => {
        const payload = Buffer.alloc(size, 3);
        const key = await store.put(payload);
        const rk = `${namespace}-raw:rss`;
        await raw.set(rk, payload);
        if ((await raw.type(store.connector.dataKey(key))) !== 'hash') {
          throw new Error(`the ${size / MB} MB value was not chunked (data key type ${await raw.type(store.connector.dataKey(key))})`);
        }
        const growth = await rssGrowth(server.url, namespace, key, rk, ctx.quick ? 1 : 3);
        const lib = growth.lib / size;
        const rawX = growth.raw / size;
        return {
          name: ctx.quick ? `large: RSS growth getting a ${size / MB} MB chunked Buffer (x payload)` : this.name,
          unit: 'x',
          lib,
          raw: rawX,
          ratio: lib / rawX,
          goal: 'lib <= 1.1x payload',
          met: lib <= 1.1,
          note: `peak RSS growth over the payload size, best of ${growth.rounds} fresh processes each (Store.get vs ioredis getBuffer); own redis-server`,
        } satisfies Row;
      });
    },
  },
];
