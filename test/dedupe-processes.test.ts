/**
 * Deduped objects across processes (single and cluster projects): 100
 * child processes put the same 10 MB value with dedupe: true; it is stored
 * once (one data key, one copy of the bytes; the puts that found it sent no
 * bytes), with 100 references. Then child processes evict one reference
 * each time: the object stays while any reference is left and disappears
 * with the last, leaving no key without a TTL. Lifetimes of other processes
 * hold one reference each, released by a close from yet another process.
 * Children run ten at a time,
 * to keep memory in bounds (each holds the 10 MB value).
 */
import type { Cluster, Redis } from 'ioredis';
import { ContextLifetime } from '../src/index.js';
import { childEnv, runChild } from './harness/child.js';
import { describe, expect, namespaceKeys, targetEnv, test } from './harness/store-fixture.js';

const CHILD = 'test/children/dedupe-holder.ts';
const PROCESSES = 100;
const AT_ONCE = 10;
const SIZE = 10 * 1024 * 1024;

/** Bytes every master has received from clients so far. */
async function netInput(redis: Redis | Cluster): Promise<number> {
  const nodes = 'nodes' in redis && typeof redis.nodes === 'function' && (redis as Cluster).isCluster ? (redis as Cluster).nodes('master') : [redis as Redis];
  let total = 0;
  for (const node of nodes) total += Number(/total_net_input_bytes:(\d+)/.exec(await node.info('stats'))?.[1] ?? NaN);
  return total;
}

describe('a deduped 10 MB value put by 100 processes', () => {
  test('is stored once with 100 references, and disappears exactly when the last reference goes', { timeout: 900_000 }, async ({
    store,
    redis,
    redisUrl,
    target,
    namespace,
  }) => {
    const env = { ...childEnv({ redisUrl, namespace }), ...targetEnv(target) };
    const run = async (args: string[]) => {
      const result = await runChild(CHILD, { env, args, timeoutMs: 180_000 });
      expect(result.code, result.stderr).toBe(0);
      return result.messages[0] as { key?: string; evicted?: number };
    };
    const refsOf = (key: string) => redis.zcard(store.connector.keys.object('refs', key));

    // The first process writes the object.
    const first = await run(['put']);
    const key = first.key as string;
    expect(key).toMatch(/^sha256\./);
    const data = store.connector.dataKey(key);
    const inputBefore = await netInput(redis);

    const keys = new Set<string>([key]);
    for (let done = 1; done < PROCESSES; done += AT_ONCE) {
      const batch = Math.min(AT_ONCE, PROCESSES - done);
      const replies = await Promise.all(Array.from({ length: batch }, () => run(['put'])));
      for (const r of replies) keys.add(r.key as string);
      expect(await refsOf(key)).toBe(done + batch);
    }
    // One key in every process; 100 references; one object of 10 MB in Redis.
    expect([...keys]).toEqual([key]);
    expect(await refsOf(key)).toBe(PROCESSES);
    const dataKeys = (await namespaceKeys(redis, namespace)).filter((k) => k.includes('}:d:'));
    expect(dataKeys).toEqual([data]);
    expect(await redis.strlen(data)).toBe(SIZE + 3);
    // The 99 puts that found it sent its hash, not its bytes (990 MB if they had; other test
    // files may share this Redis meanwhile, hence the margin).
    expect((await netInput(redis)) - inputBefore).toBeLessThan(200 * 1024 * 1024);

    // 99 references taken by ten processes at a time: the object stays.
    const counts = [...Array.from({ length: 9 }, () => 10), 9];
    await Promise.all(counts.map((n) => run(['evict', key, String(n)])));
    expect(await refsOf(key)).toBe(1);
    expect(await redis.strlen(data)).toBe(SIZE + 3);
    expect(await redis.pttl(data)).toBe(-1);
    // The last reference: the object goes with it.
    await run(['evict', key, '1']);
    expect(await redis.exists(data)).toBe(0);
    expect(await redis.exists(store.connector.keys.object('refs', key))).toBe(0);
    expect(await store.exists(key)).toBe(false);
    // What is left (the evicts' done set) expires by itself.
    for (const k of await namespaceKeys(redis, namespace)) expect(await redis.pttl(k), k).toBeGreaterThan(0);
  });

  test('lifetimes of other processes hold one reference each: the object goes with the last of them', { timeout: 300_000 }, async ({
    store,
    redis,
    redisUrl,
    target,
    namespace,
  }) => {
    const env = { ...childEnv({ redisUrl, namespace }), ...targetEnv(target) };
    const run = async (args: string[]) => {
      const result = await runChild(CHILD, { env, args, timeoutMs: 180_000 });
      expect(result.code, result.stderr).toBe(0);
      return result.messages[0] as { key?: string; closed?: boolean };
    };
    const a = new ContextLifetime(store);
    const b = new ContextLifetime(store);
    await Promise.all([a.waitUntilReady(), b.waitUntilReady()]);
    // Two processes put the same value, each under its own lifetime; this one puts it plainly.
    const [fromA, fromB] = await Promise.all([run(['lifetime', a.id]), run(['lifetime', b.id])]);
    const key = fromA.key as string;
    expect(fromB.key).toBe(key);
    expect(await store.put({ shared: 'config' }, { dedupe: true })).toBe(key);
    const refs = store.connector.keys.object('refs', key);
    const held = await redis.zrange(refs, 0, -1);
    expect(held).toHaveLength(3);
    expect(held).toEqual(expect.arrayContaining([`l:${a.id}`, `l:${b.id}`]));

    // Another process closes each lifetime: each releases its reference, nothing more.
    await run(['close', a.id]);
    expect(await store.get(key)).toEqual({ shared: 'config' });
    await run(['close', b.id]);
    expect(await redis.zrange(refs, 0, -1)).toEqual([expect.stringMatching(/^p:/)]);
    expect(await a.done()).toBe(true);
    await store.evict(key);
    expect(await store.exists(key)).toBe(false);
    expect(await redis.exists(refs)).toBe(0);
  });
});
