/**
 * The command line and chunked objects (issue 16): `inspect` shows a chunked
 * object's size, chunk count and chunk size and counts chunked objects and
 * staging hashes; `gc` treats a chunked orphan as any orphan (its data key is
 * a hash), leaves a writer's staging hash (it has a TTL) alone, and evicts a
 * stale one (no TTL: no writer left). Single Redis and Cluster.
 */
import type { Redis } from 'ioredis';
import { ContextLifetime, RedisConnector, Store, drop, getKey } from '../../src/index.js';
import type { GcReport } from '../../src/cli/gc.js';
import type { InspectReport, KeyReport } from '../../src/cli/inspect.js';
import { connectionOptions, describe, expect, test as base } from '../harness/store-fixture.js';
import { cli, cliJson, targetArgs } from './util.js';

const CHUNK = 64 * 1024;

const test = base.extend('chunked', async ({ target, namespace }, { onCleanup }) => {
  const store = new Store(`cli-chunks-${namespace}`, new RedisConnector({ ...connectionOptions(target), namespace }), { chunkSize: CHUNK });
  onCleanup(() => store.close());
  return store;
});

/** A staging hash of a chunked write of `key` as a writer leaves it mid-write: a chunk and the header. */
async function staging(redis: Redis, store: Store, key: string, w: string, ttlMs?: number): Promise<string> {
  const stage = store.connector.keys.stageKey(key, w);
  await redis.hset(stage, `${w}:0`, Buffer.alloc(CHUNK, 1), 'h', Buffer.from([0xb7, 0x42, 0x08]));
  if (ttlMs !== undefined) await redis.pexpire(stage, ttlMs);
  return stage;
}

describe('inspect', () => {
  test('inspect KEY of a chunked object shows its size, chunk count and chunk size', async ({ chunked, redis, target, namespace }) => {
    const key = await chunked.put(Buffer.alloc(4 * CHUNK + 10, 9));
    expect(await redis.type(chunked.connector.dataKey(key))).toBe('hash');
    const base = ['-n', namespace, ...targetArgs(target)];
    const r = await cliJson<KeyReport>(['inspect', ...base, '--', key]);
    expect(r.object).toMatchObject({
      key,
      status: 'orphan',
      data: { present: true, type: 'hash', ttlMs: null, chunks: { bytes: 4 * CHUNK + 13, count: 5, chunkSize: CHUNK } },
    });
    const text = await cli(['inspect', ...base, '--', key]);
    expect(text.code, text.stderr).toBe(0);
    expect(text.stdout).toContain('\n  status       orphan: belongs to nothing (gc evicts it)\n');
    expect(text.stdout).toMatch(/\n {2}data +hash, [\d,]+ bytes in memory, idle \S+, TTL none\n/);
    expect(text.stdout).toContain(`\n  chunked      ${(4 * CHUNK + 13).toLocaleString('en-US')} bytes stored in 5 chunks of 65,536 bytes`);

    // A small object has no chunks.
    const small = await chunked.put(Buffer.alloc(100));
    expect((await cliJson<KeyReport>(['inspect', ...base, '--', small])).object?.data).toMatchObject({ type: 'string', chunks: null });
    await chunked.evict(key);
    await chunked.evict(small);
  });

  test('a chunked member of a lifetime and a chunked owned object show as such, with their chunks', async ({ chunked, target, namespace }) => {
    const lifetime = new ContextLifetime(chunked, { name: 'big' });
    const member = await chunked.put(Buffer.alloc(3 * CHUNK, 5), { lifetime });
    const owned = await chunked.ownedProxy(Buffer.alloc(2 * CHUNK + 1, 6));
    const base = ['-n', namespace, ...targetArgs(target)];
    const m = await cliJson<KeyReport>(['inspect', ...base, '--', member]);
    expect(m.object).toMatchObject({ status: 'member', lifetimes: [{ id: lifetime.id, own: true }], data: { type: 'hash', chunks: { count: 4, chunkSize: CHUNK } } });
    const o = await cliJson<KeyReport>(['inspect', ...base, '--', getKey(owned)]);
    expect(o.object).toMatchObject({ status: 'owned', data: { type: 'hash', chunks: { bytes: 2 * CHUNK + 4, count: 3, chunkSize: CHUNK } } });
    const gc = await cliJson<GcReport>(['gc', ...base]);
    expect(gc.items).toEqual([]);
    expect(gc.summary).toMatchObject({ objects: 2, orphans: 0 });
    await drop(owned);
    await lifetime.close();
  });

  test('the namespace view counts chunked objects, writes in progress and stale staging hashes', async ({ chunked, redis, target, namespace }) => {
    const big = await chunked.put(Buffer.alloc(2 * CHUNK, 1));
    const small = await chunked.put({ small: true });
    const live = await staging(redis, chunked, 'being-written', 'w1', 60_000);
    const stale = await staging(redis, chunked, 'left-behind', 'w2');
    const r = await cliJson<InspectReport>(['inspect', '-n', namespace, ...targetArgs(target)]);
    expect(r).toMatchObject({ objects: 2, chunked: 1, staging: { writing: 1, stale: 1 }, unrecognized: { count: 0 } });
    expect(r.orphans.items.map((o) => o.key).sort()).toEqual([big, small].sort());
    const text = await cli(['inspect', '-n', namespace, ...targetArgs(target)]);
    expect(text.stdout.split('\n')[0]).toMatch(/, 1 chunked, 1 chunked write in progress, 1 stale staging hash \(gc evicts these\)$/);
    await redis.unlink(live);
    await redis.unlink(stale);
    await chunked.evict(big);
    await chunked.evict(small);
  });
});

describe('gc', () => {
  test('evicts a chunked orphan whole and keeps an owned chunked object', async ({ chunked, redis, target, namespace }) => {
    const orphan = await chunked.put(Buffer.alloc(3 * CHUNK, 2));
    const owned = await chunked.ownedProxy(Buffer.alloc(3 * CHUNK, 3));
    const base = ['-n', namespace, ...targetArgs(target)];
    const dry = await cliJson<GcReport>(['gc', ...base]);
    expect(dry.items).toEqual([{ kind: 'object', key: orphan, ttlMs: null, idleSeconds: expect.any(Number), action: 'would-evict', reason: null }]);
    expect(dry.summary).toMatchObject({ objects: 2, orphans: 1, wouldEvict: 1 });

    const run = await cliJson<GcReport>(['gc', '--yes', ...base]);
    expect(run.items).toEqual([{ kind: 'object', key: orphan, ttlMs: null, idleSeconds: expect.any(Number), action: 'evicted', reason: null }]);
    expect(await redis.exists(chunked.connector.dataKey(orphan))).toBe(0);
    expect((await chunked.get<Buffer>(getKey(owned)))?.equals(Buffer.alloc(3 * CHUNK, 3))).toBe(true);
    await drop(owned);
  });

  test('a stale staging hash (no TTL) is evicted; a writer\'s (with a TTL) is left alone', async ({ chunked, redis, target, namespace }) => {
    const live = await staging(redis, chunked, 'being-written', 'w1', 60_000);
    const stale = await staging(redis, chunked, 'left-behind', 'w2');
    const base = ['-n', namespace, ...targetArgs(target)];

    const dry = await cliJson<GcReport>(['gc', ...base]);
    expect(dry.items).toEqual([
      { kind: 'staging', key: 'left-behind', redisKey: stale, ttlMs: null, idleSeconds: expect.any(Number), action: 'would-evict', reason: null },
    ]);
    expect(dry.summary.staging).toEqual({ found: 2, stale: 1, evicted: 0 });
    const text = await cli(['gc', ...base]);
    expect(text.stdout).toContain(`would evict the stale staging hash of a chunked write of left-behind (${stale})`);
    expect(text.stdout.trimEnd().split('\n').at(-1)).toBe(
      `Dry run: 0 orphans of 0 objects in namespace ${namespace} would be evicted. 1 stale staging hash of chunked writes would be evicted too. Run again with --yes to evict it.`,
    );
    expect(await redis.exists(stale)).toBe(1);

    const run = await cliJson<GcReport>(['gc', '--yes', ...base]);
    expect(run.items).toMatchObject([{ kind: 'staging', key: 'left-behind', action: 'evicted' }]);
    expect(run.summary.staging).toEqual({ found: 2, stale: 1, evicted: 1 });
    expect(await redis.exists(stale)).toBe(0);
    expect(await redis.exists(live)).toBe(1);
    await redis.unlink(live);
  });
});
