/**
 * Lifetimes across real processes: a second process attached to a
 * ContextLifetime, a lease that outlives its creator, and the StaticLifetime
 * of a child that ends normally, by a signal, by process.exit() or SIGKILL.
 *
 * Waits poll with a deadline; nothing asserts how long anything took. For
 * the normal ends the lease is 30 s, so "gone right after the child ended"
 * can only be the eviction, not the lease.
 */
import { ContextLifetime } from '../../src/index.js';
import { STATIC_MARGIN_LEASES } from '../../src/lifetimes/base.js';
import { childEnv, killAllChildren, runChild, spawnChild, type ChildHandle } from '../harness/child.js';
import { afterEach, describe, expect, test } from '../harness/store-fixture.js';
import { namespaceKeys, objectCount, waitUntil } from './util.js';

afterEach(async () => {
  await killAllChildren();
});

const CHILD_START_MS = 30_000;

describe('a ContextLifetime shared by two processes', () => {
  test('a second process attached to a ContextLifetime sees done() flip to true when the first closes it, and its addKey then throws LifetimeEndedError', async ({
    store,
    redisUrl,
    namespace,
  }) => {
    // Created in Redis before its id goes to the child.
    const lifetime = await new ContextLifetime(store, { name: 'shared' }).waitUntilReady();
    const child = spawnChild('test/children/lifetime-attach.ts', {
      args: ['watch'],
      env: { ...childEnv({ redisUrl, namespace }), LIFETIME_ID: lifetime.id },
    });
    const ready = await child.waitForMessage<{ key: string; done: boolean }>((m) => (m as { ready?: boolean }).ready === true, CHILD_START_MS);
    expect(ready.done).toBe(false);
    expect(await store.exists(ready.key)).toBe(true);

    await lifetime.close();

    const after = await child.waitForMessage<{ error?: { name: string; message: string } }>((m) => (m as { flipped?: boolean }).flipped === true);
    expect(after.error?.name).toBe('LifetimeEndedError');
    expect(after.error?.message).toContain(lifetime.id);
    expect(await store.exists(ready.key)).toBe(false);
    expect((await child.exited).code).toBe(0);
  });

  test("a lifetime closed by another process evicts the creator's objects and has ended for the creator", async ({
    store,
    redisUrl,
    namespace,
  }) => {
    const lifetime = new ContextLifetime(store);
    const keys = await store.putBatch(['a', 'b'], { lifetime });
    const out = await runChild('test/children/lifetime-attach.ts', {
      args: ['close'],
      env: { ...childEnv({ redisUrl, namespace }), LIFETIME_ID: lifetime.id },
      timeoutMs: CHILD_START_MS,
    });
    expect(out.code, out.stderr).toBe(0);
    expect(await lifetime.done()).toBe(true);
    for (const key of keys) expect(await store.exists(key)).toBe(false);
  });
});

describe('a LeaseLifetime outlives its creator', () => {
  test("a LeaseLifetime's objects are gone after the lease, with the creating Store closed and its process exited before then", async ({
    store,
    redis,
    redisUrl,
    namespace,
  }) => {
    const out = await runChild('test/children/lease-owner.ts', {
      env: { ...childEnv({ redisUrl, namespace }), LEASE_SECONDS: '4' },
      timeoutMs: CHILD_START_MS,
    });
    expect(out.code, out.stderr).toBe(0);
    const { keys, lifetimeId, pttls } = out.messages[0] as { keys: string[]; lifetimeId: string; pttls: number[] };
    expect(keys).toHaveLength(4);
    // The child saw each object carry the lease as a Redis TTL (-2: expired already, on a slow machine).
    for (const pttl of pttls) {
      expect(pttl).not.toBe(-1);
      expect(pttl).toBeLessThanOrEqual(4_000);
    }
    // The creator is gone; Redis alone ends the lease.
    await waitUntil(async () => (await namespaceKeys(redis, namespace)).length === 0, 'every key of the lease is gone');
    for (const key of keys) expect(await store.exists(key)).toBe(false);
    expect(await (await ContextLifetime.attach(store, lifetimeId)).done()).toBe(true);
  });
});

describe('the StaticLifetime of a child process', () => {
  interface Ready {
    keys: string[];
    lifetimeId: string;
    pttls: number[];
  }

  async function staticChild(
    ctx: { redisUrl: string; namespace: string },
    mode: string,
    leaseTtl: number,
    env: Record<string, string> = {},
  ): Promise<{ child: ChildHandle; ready: Ready }> {
    const child = spawnChild('test/children/static-owner.ts', {
      args: [mode],
      env: { ...childEnv(ctx), LEASE_TTL: String(leaseTtl), ...env },
    });
    const ready = await child.waitForMessage<Ready>((m) => (m as { ready?: boolean }).ready === true, CHILD_START_MS);
    expect(ready.keys).toHaveLength(4);
    // Each object carries the lease plus the outage margin (2 leases) as a Redis TTL.
    for (const pttl of ready.pttls) {
      expect(pttl).not.toBe(-1);
      expect(pttl).toBeLessThanOrEqual((1 + STATIC_MARGIN_LEASES) * leaseTtl * 1000);
    }
    return { child, ready };
  }

  test.for(['close-store', 'before-exit'])(
    'a child that puts static objects and ends normally (%s) leaves nothing',
    async (mode, { redis, redisUrl, namespace }) => {
      const { child } = await staticChild({ redisUrl, namespace }, mode, 30);
      expect(await objectCount(redis, namespace)).toBe(4);
      await child.send({ go: true });
      // Ending by itself also proves the heartbeat timer does not hold the process.
      const exit = await child.exited;
      expect(exit, child.stderr).toEqual({ code: 0, signal: null });
      expect(await objectCount(redis, namespace)).toBe(0);
    },
  );

  test.for(['SIGTERM', 'SIGINT'] as const)(
    'a child stopped by %s evicts its static objects, then dies of that signal',
    async (signal, { redis, redisUrl, namespace }) => {
      const { child } = await staticChild({ redisUrl, namespace }, 'wait', 30);
      expect(await objectCount(redis, namespace)).toBe(4);
      child.kill(signal);
      const exit = await child.exited;
      expect(exit, child.stderr).toEqual({ code: null, signal });
      expect(await objectCount(redis, namespace)).toBe(0);
    },
  );

  test.for(['the default', "signals: 'none'"])(
    "with the app's own SIGTERM drain (%s), the static objects stay during the drain and are gone after it",
    async (how, { redis, redisUrl, namespace }) => {
      // A 30 s lease: only the app's close() at the end of its drain can explain their going.
      const env: Record<string, string> = how === 'the default' ? {} : { STATIC_SIGNALS: 'none' };
      const { child } = await staticChild({ redisUrl, namespace }, 'drain', 30, { DRAIN_MS: '1000', ...env });
      child.kill('SIGTERM');
      await child.waitForMessage((m) => (m as { sigterm?: boolean }).sigterm === true);
      // Well into the drain: nothing was evicted behind the application's back.
      await new Promise((r) => setTimeout(r, 400));
      const drained = () => child.messages.some((m) => (m as { drained?: boolean }).drained === true);
      expect(await objectCount(redis, namespace)).toBe(4);
      expect(drained()).toBe(false);
      expect(await child.exited, child.stderr).toEqual({ code: 0, signal: null });
      expect(drained()).toBe(true);
      expect(await objectCount(redis, namespace)).toBe(0);
    },
  );

  test("with signals: 'evict', SIGTERM evicts at once even while the app has its own handler, which decides when to exit", async ({
    redis,
    redisUrl,
    namespace,
  }) => {
    const { child } = await staticChild({ redisUrl, namespace }, 'own-handler', 30, { STATIC_SIGNALS: 'evict' });
    child.kill('SIGTERM');
    await child.waitForMessage((m) => (m as { sigterm?: boolean }).sigterm === true);
    await waitUntil(async () => (await objectCount(redis, namespace)) === 0, 'the static objects are evicted');
    let exited = false;
    void child.exited.then(() => (exited = true));
    await new Promise((r) => setTimeout(r, 100));
    expect(exited).toBe(false); // the signal was not re-raised over the app's handler
    await child.send({ exit: true });
    expect(await child.exited).toEqual({ code: 0, signal: null });
  });

  test.for(['SIGKILL', 'process.exit()'])(
    "a child that ends by %s leaves its static objects to the lease: they are gone after leaseTtl and the outage margin",
    async (how, { redis, redisUrl, namespace }) => {
      const { child, ready } = await staticChild({ redisUrl, namespace }, how === 'SIGKILL' ? 'wait' : 'process-exit', 1);
      if (how === 'SIGKILL') child.kill('SIGKILL');
      else await child.send({ go: true });
      const exit = await child.exited;
      const ended = Date.now();
      expect(exit).toEqual(how === 'SIGKILL' ? { code: null, signal: 'SIGKILL' } : { code: 0, signal: null });
      await waitUntil(async () => (await namespaceKeys(redis, namespace)).length === 0, 'the lease ran out', 20_000, 20);
      console.info(`after ${how}, the static objects were gone ${Date.now() - ended} ms later (leaseTtl 1000 ms)`);
      expect(ready.lifetimeId).toBeTruthy();
    },
  );
});
