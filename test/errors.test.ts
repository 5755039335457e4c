import { Worker } from 'node:worker_threads';
import {
  BorrowedError,
  InvalidRefError,
  LifetimeEndedError,
  ProxyResolveMissingKeyError,
  ProxyStoreError,
  toRef,
} from '../src/index.js';
import { childEnv, spawnChild } from './harness/child.js';
import { describe, expect, test } from './harness/store-fixture.js';

describe('errors that cross processes', () => {
  test('every error class has a stable code and its own name', () => {
    const e = new ProxyResolveMissingKeyError('key k is missing', { key: 'k' });
    expect(e).toBeInstanceOf(ProxyStoreError);
    expect(e.name).toBe('ProxyResolveMissingKeyError');
    expect(e.code).toBe('PROXY_RESOLVE_MISSING_KEY');
    expect(new InvalidRefError('x').code).toBe('INVALID_REF');
    expect(new BorrowedError('x').code).toBe('BORROWED');
  });

  test('JSON.stringify and fromJSON give back the same class, code, message and key', () => {
    const e = new LifetimeEndedError('lifetime L has ended', { lifetime: 'L' });
    const back = ProxyStoreError.fromJSON(JSON.parse(JSON.stringify(e)));
    expect(back).toBeInstanceOf(LifetimeEndedError);
    expect(back.code).toBe('LIFETIME_ENDED');
    expect(back.message).toBe('lifetime L has ended');
    expect(back.lifetime).toBe('L');
  });

  test('structuredClone loses the class; fromJSON recovers it', () => {
    const e = new ProxyResolveMissingKeyError('key k is missing', { key: 'k' });
    const cloned = structuredClone(e);
    expect(cloned).not.toBeInstanceOf(ProxyResolveMissingKeyError);
    const back = ProxyStoreError.fromJSON(cloned);
    expect(back).toBeInstanceOf(ProxyResolveMissingKeyError);
    expect(back.code).toBe('PROXY_RESOLVE_MISSING_KEY');
    expect(back.message).toBe('key k is missing');
  });

  test('an error thrown in a worker thread reaches the caller as the same class', async () => {
    const worker = new Worker(
      `const { parentPort } = require('node:worker_threads');
       class ProxyResolveMissingKeyError extends Error { constructor(m) { super(m); this.name = 'ProxyResolveMissingKeyError'; } }
       parentPort.postMessage(new ProxyResolveMissingKeyError('key w is missing'));`,
      { eval: true },
    );
    const message = await new Promise((resolve) => worker.once('message', resolve));
    await worker.terminate();
    const back = ProxyStoreError.fromJSON(message);
    expect(back).toBeInstanceOf(ProxyResolveMissingKeyError);
    expect(back.message).toBe('key w is missing');
  });

  test('a failed resolve in another process reaches the caller as the same class with the same code', async ({
    store,
    namespace,
    redisUrl,
  }) => {
    const p = await store.proxy([1], { evict: true });
    const ref = toRef(p);
    await store.evict(ref.key);
    const child = spawnChild('test/children/failing-resolve.ts', {
      env: { ...childEnv({ redisUrl, namespace }), STORE_NAME: store.name },
    });
    await child.waitForMessage((m) => (m as { ready?: boolean }).ready === true, 20_000);
    await child.send(ref);
    const reply = await child.waitForMessage<{ cloned: unknown; json: unknown }>((m) => 'cloned' in (m as object), 20_000);
    await child.exited;
    for (const form of [reply.cloned, reply.json]) {
      const err = ProxyStoreError.fromJSON(form);
      expect(err).toBeInstanceOf(ProxyResolveMissingKeyError);
      expect(err.code).toBe('PROXY_RESOLVE_MISSING_KEY');
      expect(err.message).toContain(ref.key);
    }
    expect(ProxyStoreError.fromJSON(reply.json).key).toBe(ref.key);
  });

  test('anything else becomes a plain ProxyStoreError', () => {
    expect(ProxyStoreError.fromJSON('nope')).toBeInstanceOf(ProxyStoreError);
    expect(ProxyStoreError.fromJSON({ code: 'UNKNOWN', message: 'm' }).message).toBe('m');
  });
});
