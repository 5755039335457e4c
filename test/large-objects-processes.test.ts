/**
 * Chunked values across processes (issue 16, DESIGN §7.4): a consumer killed
 * mid-getStream, an ephemeral chunked value raced by ten processes, and an
 * owned chunked value updated by its owner while another process reads it.
 * Runs on a single Redis and on a Cluster.
 */
import { createHash } from 'node:crypto';
import { RedisConnector, Store, drop, getKey, mutBorrow, release, resolve, toRef, update } from '../src/index.js';
import { childEnv, killAllChildren, spawnChild, type ChildHandle } from './harness/child.js';
import { afterEach, connectionOptions, describe, expect, namespaceKeys, targetEnv, test as base } from './harness/store-fixture.js';

const CHUNK = 64 * 1024;

const test = base.extend('chunked', async ({ target, namespace }, { onCleanup }) => {
  const store = new Store(`chunkp-${namespace}`, new RedisConnector({ ...connectionOptions(target), namespace }), {
    register: true,
    chunkSize: CHUNK,
  });
  onCleanup(() => store.close());
  return store;
});

afterEach(killAllChildren);

function bytes(n: number, seed = 1): Buffer {
  const b = Buffer.allocUnsafe(n);
  for (let i = 0; i < n; i++) b[i] = (i * 7 + seed) % 251;
  return b;
}

const sha = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');

type Ctx = { redisUrl: string; namespace: string; target: Parameters<typeof targetEnv>[0] };
const env = (ctx: Ctx, extra: Record<string, string> = {}) => ({ ...childEnv(ctx), ...targetEnv(ctx.target), ...extra });

describe('a consumer killed mid-getStream', () => {
  test('leaves the object intact: another process and this one read it whole, and it evicts normally', { timeout: 90_000 }, async ({
    chunked,
    redis,
    redisUrl,
    namespace,
    target,
  }) => {
    const value = bytes(40 * CHUNK + 321, 23);
    const key = await chunked.put(value);
    expect(await redis.type(chunked.connector.dataKey(key))).toBe('hash');

    const victim = spawnChild('test/children/chunk-reader.ts', { env: env({ redisUrl, namespace, target }), args: ['stall', key] });
    const { started } = await victim.waitForMessage<{ started: number }>((m) => 'started' in (m as object), 30_000);
    expect(started).toBeGreaterThan(0);
    expect(started).toBeLessThan(value.length);
    victim.kill('SIGKILL');
    expect((await victim.exited).signal).toBe('SIGKILL');

    const other = spawnChild('test/children/chunk-reader.ts', { env: env({ redisUrl, namespace, target }), args: ['hash', key] });
    const read = await other.waitForMessage<{ hash: string; bytes: number }>((m) => 'hash' in (m as object), 30_000);
    expect(read).toEqual({ hash: sha(value), bytes: value.length });
    expect((await chunked.get<Buffer>(key))?.equals(value)).toBe(true);

    await chunked.evict(key);
    expect(await chunked.exists(key)).toBe(false);
    // Whatever the killed reader left must expire by itself (the leak check fails keys without a TTL).
    for (const k of await namespaceKeys(redis, namespace)) expect(await redis.pttl(k), k).toBeGreaterThan(0);
  });
});

describe('an ephemeral chunked value raced by 10 processes', () => {
  type Result = { ok: true; value: Uint8Array } | { ok: false; name: string; message: string };

  test('exactly one gets it byte for byte, nine get ProxyResolveMissingKeyError, no chunk or grace copy is left', { timeout: 180_000 }, async ({
    chunked,
    redis,
    redisUrl,
    namespace,
    target,
  }) => {
    const value = bytes(12 * CHUNK + 99, 29);
    const ref = toRef(await chunked.proxy(value, { evict: true }));
    expect(await redis.type(chunked.connector.dataKey(ref.key))).toBe('hash');

    const children: ChildHandle[] = [];
    for (let i = 0; i < 10; i++) {
      children.push(spawnChild('test/children/resolver.ts', { env: env({ redisUrl, namespace, target }, { STORE_NAME: chunked.name }) }));
    }
    await Promise.all(children.map((c) => c.waitForMessage((m) => (m as { ready?: boolean }).ready === true, 60_000)));
    for (const c of children) await c.send({ refs: [ref], via: 'ref', waitForGo: true });
    await Promise.all(children.map((c) => c.send({ go: true })));
    const results = (
      await Promise.all(children.map((c) => c.waitForMessage<{ results: Result[] }>((m) => 'results' in (m as object), 60_000)))
    ).flatMap((r) => r.results);
    await Promise.all(children.map((c) => c.exited));

    const winners = results.filter((r): r is Extract<Result, { ok: true }> => r.ok);
    expect(winners).toHaveLength(1);
    expect(sha(winners[0]!.value)).toBe(sha(value));
    const losers = results.filter((r): r is Extract<Result, { ok: false }> => !r.ok);
    expect(losers.map((l) => l.name)).toEqual(Array(9).fill('ProxyResolveMissingKeyError'));

    // The winner releases its grace copy once it has the value; then only the tombstone (expiring) is left.
    const deadline = Date.now() + 20_000;
    let left = await namespaceKeys(redis, namespace);
    while (left.some((k) => !k.includes(':tomb:')) && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 50));
      left = await namespaceKeys(redis, namespace);
    }
    expect(left).toEqual([chunked.connector.keys.object('tomb', ref.key)]);
    expect(await redis.pttl(left[0]!)).toBeGreaterThan(0);
  });
});

describe('an owned chunked value updated while another process reads it', () => {
  test('every read (get, getStream, getRange) is one version whole, never a mix', { timeout: 180_000 }, async ({
    chunked,
    redis,
    redisUrl,
    namespace,
    target,
  }) => {
    const size = 10 * CHUNK + 77;
    const owned = await chunked.ownedProxy(Buffer.alloc(size, 1));
    const key = getKey(owned);
    const reader = spawnChild('test/children/chunk-reader.ts', { env: env({ redisUrl, namespace, target }), args: ['loop', key] });
    await reader.waitForMessage((m) => Array.isArray((m as { seen?: number[] }).seen), 30_000);

    const writer = await mutBorrow(owned);
    const target_ = (await resolve(writer)) as unknown as Buffer;
    expect(target_.length).toBe(size);
    const seen = () => {
      const last = [...reader.messages].reverse().find((m) => Array.isArray((m as { seen?: number[] }).seen)) as { seen: number[] } | undefined;
      return last?.seen.length ?? 0;
    };
    // Versions 2, 3, ... each filled with its own byte, until the reader has seen several of them
    // (at most 250 updates: a reader that never sees one fails the assertion below).
    let updates = 0;
    for (let v = 2; updates < 250 && (updates < 20 || seen() < 4); v = v === 250 ? 2 : v + 1) {
      target_.fill(v);
      await update(writer);
      updates++;
      await new Promise((r) => setTimeout(r, 5));
    }
    // The versions were chunked writes (each a new write id swapped in whole), not one string.
    expect(await redis.type(chunked.connector.dataKey(key))).toBe('hash');
    await reader.send({ stop: true });
    const done = await reader.waitForMessage<{
      reads: number;
      versions: number[];
      mixed: number[][];
      mixedCount: number;
      errors: Record<string, number>;
    }>((m) => (m as { done?: boolean }).done === true, 60_000);
    await release(writer);
    await drop(owned);

    expect(done.mixed).toEqual([]);
    expect(done.mixedCount).toBe(0);
    expect(done.versions.length).toBeGreaterThanOrEqual(4);
    expect(done.reads).toBeGreaterThan(done.versions.length);
  });
});
