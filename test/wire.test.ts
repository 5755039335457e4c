/**
 * Watches the wire with MONITOR: each public operation is one command from
 * the store's connection (one round trip), scripts go as EVALSHA after
 * their first use, and SCRIPT FLUSH in the middle of a run breaks nothing.
 */
import type { Redis } from 'ioredis';
import { fromRef, getKey, resolve, toRef } from '../src/index.js';
import { describe, expect, test } from './harness/store-fixture.js';

interface Seen {
  command: string;
  args: string[];
}

async function watch(redis: Redis, source: Redis) {
  // Not redis.monitor(). MONITOR streams every client's commands (other test files run in
  // parallel), and ioredis marks the connection as monitoring only a tick after MONITOR's OK:
  // lines in the same chunk as the OK, or still in flight after disconnect(), reach it as
  // replies to no command, which it emits as an 'error' ("Command queue state error") before
  // monitor() has attached any listener. Those lines fall outside the markers: ignore them.
  const monitor = redis.duplicate({ monitor: true });
  monitor.on('error', () => {});
  await new Promise((resolve) => monitor.once('monitoring', resolve));
  await source.ping(); // make sure the store's connection is up
  const address = `${source.stream.localAddress}:${source.stream.localPort}`;
  const seen: Seen[] = [];
  monitor.on('monitor', (_time: string, args: string[], from: string) => {
    if (from.endsWith(address)) seen.push({ command: (args[0] ?? '').toLowerCase(), args: args.slice(1) });
  });
  let marker = 0;
  /** The commands the store's connection sent while `fn` ran. */
  async function during(fn: () => Promise<unknown>): Promise<Seen[]> {
    const start = `start-${marker++}`;
    const end = `end-${marker++}`;
    await source.echo(start);
    await fn();
    await source.echo(end);
    await waitFor(() => seen.some((s) => s.command === 'echo' && s.args[0] === end));
    const from = seen.findIndex((s) => s.command === 'echo' && s.args[0] === start);
    const to = seen.findIndex((s) => s.command === 'echo' && s.args[0] === end);
    return seen.slice(from + 1, to);
  }
  function stop(): void {
    monitor.disconnect();
  }
  return { during, stop };
}

async function waitFor(cond: () => boolean, timeoutMs = 5000): Promise<void> {
  const until = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > until) throw new Error('timed out waiting for MONITOR output');
    await new Promise((r) => setTimeout(r, 5));
  }
}

describe('round trips on the wire', () => {
  test('put, get, resolve and an ephemeral consume are one command each; scripts go as EVALSHA', async ({
    store,
    redis,
  }) => {
    const client = store.connector.client as Redis;
    const wire = await watch(redis, client);

    let key = '';
    const put = await wire.during(async () => {
      key = await store.put({ a: 1 });
    });
    expect(put.map((s) => s.command)).toEqual(['set']);

    const get = await wire.during(() => store.get(key));
    expect(get.map((s) => s.command)).toEqual(['get']);

    const p = fromRef(toRef(await store.proxyFromKey(key)));
    const resolved = await wire.during(() => resolve(p));
    expect(resolved.map((s) => s.command)).toEqual(['get']);

    const e1 = await store.proxy([1], { evict: true });
    const e2 = await store.proxy([2], { evict: true });
    const e3 = await store.proxy([3], { evict: true });
    const first = await wire.during(() => resolve(fromRef(toRef(e1))));
    expect(first).toHaveLength(1);
    expect(['eval', 'evalsha']).toContain(first[0]!.command);
    const second = await wire.during(() => resolve(fromRef(toRef(e2))));
    expect(second.map((s) => s.command)).toEqual(['evalsha']);

    // SCRIPT FLUSH in the middle of a run: the next call reloads the script and succeeds.
    await redis.script('FLUSH');
    let value: unknown;
    const afterFlush = await wire.during(async () => {
      value = await resolve(fromRef(toRef(e3)));
    });
    expect(value).toEqual([3]);
    expect(afterFlush.map((s) => s.command)).toEqual(['evalsha', 'eval']);
    const e4 = await store.proxy([4], { evict: true });
    const later = await wire.during(() => resolve(fromRef(toRef(e4))));
    expect(later.map((s) => s.command)).toEqual(['evalsha']);

    await wire.stop();
    await store.evict(key);
    for (const e of [e1, e2, e3, e4]) expect(await store.exists(getKey(e))).toBe(false);
  });

  test('putBatch of 2,500 values sends three MSETs of at most 1,000 keys and nothing else', async ({ store, redis }) => {
    const client = store.connector.client as Redis;
    const wire = await watch(redis, client);
    let keys: string[] = [];
    const seen = await wire.during(async () => {
      keys = await store.putBatch(Array.from({ length: 2500 }, (_, i) => ({ i })));
    });
    expect(seen.map((s) => s.command)).toEqual(['mset', 'mset', 'mset']);
    expect(seen.map((s) => s.args.length / 2)).toEqual([1000, 1000, 500]);
    await wire.stop();
    for (const k of keys) await store.evict(k);
  });
});
