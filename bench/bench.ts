/**
 * `npm run bench`: proxystore-redis side by side with raw ioredis on the same
 * Redis, in the same run, the two alternating round by round so that machine
 * noise hits both alike. Prints a table of medians and ratios; `--json FILE`
 * writes the same rows; `--quick` runs a short version (CI: it only has to run).
 *
 * The raw baseline is what you would hand-write without this library:
 * `SET key JSON.stringify(value)` and `JSON.parse(GET key)` for objects, the
 * bytes as they are for Buffers.
 */
import { writeFileSync } from 'node:fs';
import { Redis } from 'ioredis';
import { Bench } from 'tinybench';
import { RedisConnector, Store, fromRef, resolve, toRef } from '../src/index.js';
import { findOrStartRedis } from '../scripts/local-redis.js';
import { cacheCases, cases as baseCases, type BenchContext, type Row } from './cases.js';
import { hotPathCases } from './hotpath.js';
import { largeCases } from './large.js';

const cases = [...baseCases, ...cacheCases, ...hotPathCases, ...largeCases];

const args = process.argv.slice(2);
const quick = args.includes('--quick');
const jsonAt = args.indexOf('--json');
const jsonFile = jsonAt >= 0 ? (args[jsonAt + 1] ?? 'bench-results.json') : undefined;
const only = args.find((a) => a.startsWith('--only='))?.slice('--only='.length);

const redisInfo = await findOrStartRedis({ log: (m) => console.error(`redis: ${m}`) });
const namespace = `bench-${process.pid}`;
const raw = new Redis(redisInfo.url);
// cacheSize 0: these two measure the round trip of each call; the cache rows (bench/cases.ts) make their own caching stores.
const store = new Store('bench', new RedisConnector({ url: redisInfo.url, namespace }), { register: true, cacheSize: 0 });
// A second store of the same name on its own connection: refs made by `store` resolve through it.
const maker = new Store('bench', new RedisConnector({ url: redisInfo.url, namespace }), { cacheSize: 0 });

const ctx: BenchContext = {
  quick,
  raw,
  store,
  maker,
  namespace,
  url: redisInfo.url,
  rounds: quick ? 2 : 8,
  roundMs: quick ? 100 : 400,
  async latency(lib, baseline, opts = {}) {
    // Alternate which side goes first; keep per-round medians of each.
    const libMedians: number[] = [];
    const rawMedians: number[] = [];
    for (let round = 0; round < this.rounds; round++) {
      const bench = new Bench({ time: this.roundMs, warmupTime: quick ? 20 : 100 });
      const order = round % 2 === 0 ? (['lib', 'raw'] as const) : (['raw', 'lib'] as const);
      for (const side of order) bench.add(side, side === 'lib' ? lib : baseline);
      await bench.run();
      for (const task of bench.tasks) {
        const r = task.result as { latency?: { p50: number } } | undefined;
        if (!r?.latency) throw new Error(`benchmark task ${task.name} failed: ${JSON.stringify(task.result)}`);
        (task.name === 'lib' ? libMedians : rawMedians).push(r.latency.p50);
      }
      if (!opts.keep) await cleanup();
    }
    return { lib: median(libMedians), raw: median(rawMedians) };
  },
  async timed(lib, baseline) {
    const libTimes: number[] = [];
    const rawTimes: number[] = [];
    for (let round = 0; round < this.rounds; round++) {
      const order = round % 2 === 0 ? [lib, baseline] : [baseline, lib];
      for (const fn of order) {
        const t = performance.now();
        await fn();
        (fn === lib ? libTimes : rawTimes).push(performance.now() - t);
        await cleanup();
      }
    }
    return { lib: median(libTimes), raw: median(rawTimes) };
  },
  fromRefResolve: async (p) => resolve(fromRef(toRef(p))),
};

export function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? (s[m] as number) : ((s[m - 1] as number) + (s[m] as number)) / 2;
}

async function cleanup(): Promise<void> {
  let cursor = '0';
  do {
    const [next, keys] = await raw.scan(cursor, 'MATCH', `${namespace}:*`, 'COUNT', 1000);
    cursor = next;
    if (keys.length) await raw.unlink(...keys);
  } while (cursor !== '0');
  for (const pattern of ['raw:*']) {
    let c = '0';
    do {
      const [next, keys] = await raw.scan(c, 'MATCH', `${namespace}-${pattern}`, 'COUNT', 1000);
      c = next;
      if (keys.length) await raw.unlink(...keys);
    } while (c !== '0');
  }
}

const rows: Row[] = [];
try {
  for (const c of cases) {
    if (only && !c.name.includes(only)) continue;
    process.stderr.write(`running: ${c.name}\n`);
    const row = await c.run(ctx);
    rows.push(row);
    await cleanup();
  }
} finally {
  await cleanup();
  await maker.close();
  await store.close();
  await raw.quit();
  await redisInfo.stop();
}

function fmt(n: number, unit: string): string {
  if (unit === 'ms' && n < 1) return `${(n * 1000).toFixed(1)} µs`;
  if (unit === 'ms') return `${n.toFixed(n < 10 ? 2 : 0)} ms`;
  if (unit === 'ops/s') return `${Math.round(n).toLocaleString('en-US')} ops/s`;
  if (unit === 'MB/s') return `${n.toFixed(0)} MB/s`;
  if (unit === 'x') return `${n.toFixed(2)}x`;
  if (unit === 'connections') return `${n} connections`;
  return `${n.toFixed(2)} ${unit}`;
}

const header = ['case', 'proxystore-redis', 'raw ioredis', 'ratio', 'goal', 'met'];
const table = rows.map((r) => [
  r.name,
  fmt(r.lib, r.unit),
  r.raw === undefined ? '-' : fmt(r.raw, r.unit),
  r.ratio === undefined ? '-' : `${r.ratio.toFixed(2)}x`,
  r.goal ?? '-',
  r.met === undefined ? '-' : r.met ? 'yes' : 'NO',
]);
const widths = header.map((h, i) => Math.max(h.length, ...table.map((row) => (row[i] as string).length)));
const line = (cells: string[]) => `| ${cells.map((c, i) => c.padEnd(widths[i] as number)).join(' | ')} |`;
console.log(line(header));
console.log(`|${widths.map((w) => '-'.repeat(w + 2)).join('|')}|`);
for (const row of table) console.log(line(row));
for (const r of rows) if (r.note) console.log(`\n${r.name}: ${r.note}`);
console.log(`\nRedis: ${redisInfo.source}; Node ${process.version}; ${quick ? 'quick run' : 'full run'}.`);
if (jsonFile) {
  writeFileSync(jsonFile, JSON.stringify({ node: process.version, quick, redis: redisInfo.source, rows }, null, 2));
  console.log(`wrote ${jsonFile}`);
}
