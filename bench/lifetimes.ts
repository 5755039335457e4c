/**
 * Benchmark: a lifetime with 1,000,000 members, filled with putBatch, then
 * extended and closed. Prints the time of each phase and, from SLOWLOG, the
 * longest single call of each lifetime script (the bound is 50 ms: no call
 * may block Redis for longer).
 *
 *   npx tsx bench/lifetimes.ts [--members 1000000] [--chunk 500,2000,5000]
 *
 * Uses REDIS_URL if set, else starts its own redis-server (see
 * scripts/local-redis.ts). Call counts and the mean time per call come from
 * INFO commandstats (before/after deltas). The longest calls come from
 * SLOWLOG: on a Redis it started itself, the bench logs every call of 1 ms or
 * more (not 0: Redis 7 also logs each command a script runs, and a
 * 1,000,000-member extend would flood the log and push the script calls
 * out); on yours it leaves the configuration alone and sees only calls over
 * your threshold.
 */
import { cpus, loadavg } from 'node:os';
import { parseArgs } from 'node:util';
import { Redis } from 'ioredis';
import { findOrStartRedis } from '../scripts/local-redis.js';
import { LUA_SCRIPTS } from '../src/generated/lua.js';
import { LeaseLifetime, RedisConnector, Store } from '../src/index.js';
import { lifetimeTuning } from '../src/lifetimes/base.js';

const BOUND_MS = 50;
/** SLOWLOG threshold on a Redis the bench started: every call that matters for the bound is logged. */
const SLOWLOG_US = 1000;
const FILL_BATCH = 20_000;

const { values: opts } = parseArgs({
  options: {
    members: { type: 'string', default: '1000000' },
    chunk: { type: 'string', default: String(lifetimeTuning.chunk) },
  },
});
const members = Number(opts.members);
const chunks = opts.chunk.split(',').map(Number);
if (!Number.isInteger(members) || members < 1 || chunks.some((c) => !Number.isInteger(c) || c < 1)) {
  throw new Error('usage: npx tsx bench/lifetimes.ts [--members N] [--chunk N[,N...]]');
}

const scriptOfSha = new Map<string, string>(Object.entries(LUA_SCRIPTS).map(([name, s]) => [s.sha, name]));
function scriptOf(args: string[]): string | undefined {
  const [command, first] = [String(args[0]).toLowerCase(), String(args[1] ?? '')];
  if (command === 'evalsha') return scriptOfSha.get(first);
  if (command === 'eval') {
    // SLOWLOG keeps the first 128 characters of each argument.
    return Object.entries(LUA_SCRIPTS).find(([, s]) => s.source.startsWith(first.slice(0, 100)))?.[0];
  }
  return undefined;
}

interface Durations {
  /** Durations (µs) of the logged calls, sorted. */
  logged: number[];
}

/** The lifetime script calls in SLOWLOG since the last reset, by script. */
async function slowlog(admin: Redis): Promise<Map<string, Durations>> {
  const entries = (await admin.slowlog('GET', -1)) as [number, number, number, string[]][];
  const out = new Map<string, Durations>();
  for (const [, , us, args] of entries) {
    const name = scriptOf(args);
    if (!name?.startsWith('lifetime')) continue;
    const d = out.get(name) ?? { logged: [] };
    d.logged.push(us);
    out.set(name, d);
  }
  for (const d of out.values()) d.logged.sort((a, b) => a - b);
  return out;
}

/** Script calls (EVAL and EVALSHA) and their total time, from INFO commandstats. */
async function scriptStats(admin: Redis): Promise<{ calls: number; usec: number }> {
  const info = await admin.info('commandstats');
  let calls = 0;
  let usec = 0;
  for (const m of info.matchAll(/^cmdstat_(?:evalsha|eval):calls=(\d+),usec=(\d+)/gm)) {
    calls += Number(m[1]);
    usec += Number(m[2]);
  }
  return { calls, usec };
}

/** Run a phase; return its wall time, script calls and their mean, and the logged lifetime calls. */
async function phase(admin: Redis, fn: () => Promise<void>) {
  await admin.slowlog('RESET');
  const before = await scriptStats(admin);
  const t = performance.now();
  await fn();
  const wall = performance.now() - t;
  const after = await scriptStats(admin);
  const calls = after.calls - before.calls;
  return { wall, calls, meanUs: calls > 0 ? (after.usec - before.usec) / calls : 0, log: await slowlog(admin) };
}

function percentile(sorted: number[], p: number): number {
  return sorted.length === 0 ? 0 : (sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] as number);
}

function ms(us: number): string {
  return `${(us / 1000).toFixed(1)} ms`;
}

function seconds(wallMs: number): string {
  return `${(wallMs / 1000).toFixed(2)} s`;
}

async function main(): Promise<void> {
  const redis = await findOrStartRedis({ log: (m) => console.log(`redis: ${m}`) });
  const admin = new Redis(redis.url);
  const ownRedis = redis.source === 'redis-server' || redis.source === 'testcontainers';
  try {
    const info = await admin.info('server');
    const version = /redis_version:(\S+)/.exec(info)?.[1];
    console.log(`Redis ${version} at ${redis.url}; ${cpus().length} CPU(s): ${cpus()[0]?.model ?? '?'}`);
    if (ownRedis) {
      await admin.config('SET', 'slowlog-log-slower-than', String(SLOWLOG_US));
      await admin.config('SET', 'slowlog-max-len', '100000');
    } else {
      const [, threshold] = (await admin.config('GET', 'slowlog-log-slower-than')) as [string, string];
      console.log(`(not our Redis: SLOWLOG only shows calls over ${threshold} µs)`);
    }

    const results: string[][] = [];
    for (const chunk of chunks) {
      lifetimeTuning.chunk = chunk;
      const namespace = `bench-lifetimes-${process.pid}-${chunk}`;
      const store = new Store('bench', new RedisConnector({ url: redis.url, namespace }));
      console.log(`\n${members.toLocaleString('en')} members, ${chunk} per close/extend call, ${lifetimeTuning.batch} per put call`);
      const loadBefore = loadavg()[0] ?? 0;

      const lifetime = await new LeaseLifetime(store, { expiry: 3600 }).waitUntilReady();
      const fill = await phase(admin, async () => {
        for (let done = 0; done < members; done += FILL_BATCH) {
          const n = Math.min(FILL_BATCH, members - done);
          await store.putBatch(Array.from({ length: n }, (_, i) => done + i), { lifetime });
        }
      });
      const extend = await phase(admin, () => lifetime.extend(600));
      const close = await phase(admin, () => lifetime.close());

      for (const [label, p] of [['fill (putBatch)', fill], ['extend', extend], ['close', close]] as const) {
        console.log(`  ${label.padEnd(16)} ${seconds(p.wall).padStart(8)}  ${String(p.calls).padStart(5)} script calls, mean ${ms(p.meanUs)}`);
        for (const [name, d] of [...p.log].sort()) {
          const l = d.logged;
          console.log(
            `    ${name.padEnd(20)} ${String(l.length).padStart(5)} calls >= ${ms(SLOWLOG_US)}: p50 ${ms(percentile(l, 50))}, p99 ${ms(percentile(l, 99))}, longest ${ms(l[l.length - 1] ?? 0)}` +
              `; over 20 ms: ${l.filter((us) => us > 20_000).length}`,
          );
        }
      }

      let left = 0;
      let cursor = '0';
      do {
        const [next, keys] = await admin.scan(cursor, 'MATCH', `${namespace}:*`, 'COUNT', 10_000);
        cursor = next;
        left += keys.filter((k) => !k.endsWith(':lt')).length;
      } while (cursor !== '0');
      await admin.unlink(store.connector.keys.lifetime('lt', lifetime.id));
      await store.close();

      const longest = (log: Map<string, Durations>, ...names: string[]) =>
        Math.max(0, ...names.map((n) => log.get(n)?.logged.at(-1) ?? 0));
      const longestAny = Math.max(
        longest(fill.log, 'lifetimePut'),
        longest(extend.log, 'lifetimeExtend', 'lifetimeExpireChunk'),
        longest(close.log, 'lifetimeClose'),
      );
      console.log(`  members left after close: ${left}`);
      // SLOWLOG times are wall-clock: on a busy machine they include time the OS kept Redis waiting.
      const load = `${loadBefore.toFixed(1)}..${(loadavg()[0] ?? 0).toFixed(1)}`;
      console.log(`  load average (1 min) during the run: ${load} on ${cpus().length} CPU(s)`);
      results.push([
        String(chunk),
        seconds(fill.wall),
        seconds(extend.wall),
        ms(extend.meanUs),
        ms(longest(extend.log, 'lifetimeExtend', 'lifetimeExpireChunk')),
        seconds(close.wall),
        ms(close.meanUs),
        ms(longest(close.log, 'lifetimeClose')),
        ms(longestAny),
        left === 0 ? 'yes' : `NO (${left} left)`,
        load,
      ]);
    }

    console.log(`\nSummary (${members.toLocaleString('en')} members; bound: no lifetime script call over ${BOUND_MS} ms)`);
    const header = ['chunk', 'fill', 'extend', 'mean call', 'longest call', 'close', 'mean call', 'longest call', 'longest of all', 'closed completely', 'load avg'];
    const widths = header.map((h, i) => Math.max(h.length, ...results.map((r) => (r[i] ?? '').length)));
    const row = (cells: string[]) => `  ${cells.map((c, i) => c.padEnd(widths[i] ?? 0)).join('  ')}`;
    console.log(row(header));
    for (const r of results) console.log(row(r));
    const worstUs = Math.max(...results.map((r) => Number.parseFloat(r[8] ?? '0') * 1000));
    console.log(
      worstUs <= BOUND_MS * 1000
        ? `\nOK: every lifetime script call stayed under ${BOUND_MS} ms.`
        : `\nOVER: a lifetime script call took ${ms(worstUs)} (bound ${BOUND_MS} ms). If the mean and p99 are far below it, ` +
            'the outlier is the OS holding Redis back (see the load average): run again on a quieter machine.',
    );
  } finally {
    admin.disconnect();
    await redis.stop();
  }
}

await main();
