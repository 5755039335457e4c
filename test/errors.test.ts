import { Worker } from 'node:worker_threads';
import {
  BorrowedError,
  ClusterReconfiguringError,
  InvalidRefError,
  LifetimeEndedError,
  MutableBorrowError,
  ProxyResolveMissingKeyError,
  ProxyStoreError,
  RedisOperationError,
  ReferenceInvalidError,
  toRef,
} from '../src/index.js';
import { errorFromReply } from '../src/errors.js';
import { retryFaults } from '../src/redis/retry.js';
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

describe('errors from a Redis Cluster that reconfigures', () => {
  test("a PSR_ code keeps its class behind ioredis's 'Too many Cluster redirections'", () => {
    const raw = new Error('Too many Cluster redirections. Last error: ReplyError: PSR_REFERENCE_INVALID the borrow of key k was released');
    const err = errorFromReply(raw, 'release', { key: 'k' });
    expect(err).toBeInstanceOf(ReferenceInvalidError);
    expect(err.message).toBe('the borrow of key k was released');
    expect(errorFromReply(new Error('Too many Cluster redirections. Last error: PSR_MUTABLE_BORROW k is borrowed'), 'borrow')).toBeInstanceOf(MutableBorrowError);
  });

  test.for([
    ['MOVED 3999 127.0.0.1:7001', false],
    ['ASK 3999 127.0.0.1:7001', false],
    ['TRYAGAIN Multiple keys request during rehashing of slot', false],
    ['CLUSTERDOWN The cluster is down', false],
    ["READONLY You can't write against a read only replica.", false],
    ['ERR Script attempted to access a non local key in a cluster node script: abc, on @user_script:1.', false],
    ['All keys in the pipeline should belong to the same slots allocation group', false],
    ['Too many Cluster redirections. Last error: ReplyError: TRYAGAIN Multiple keys request during rehashing of slot', false],
    ['Too many Cluster redirections. Last error: Error: Connection is closed.', true],
    ['Too many Cluster redirections. Last error: Error: Command timed out', true],
  ] as const)('%s is a ClusterReconfiguringError (may have run: %s)', ([message, mayHaveRun]) => {
    const err = errorFromReply(new Error(message), 'SET', { key: 'k' }) as ClusterReconfiguringError;
    expect(err).toBeInstanceOf(ClusterReconfiguringError);
    expect(err).toBeInstanceOf(RedisOperationError);
    expect(err.code).toBe('CLUSTER_RECONFIGURING');
    expect(err.retryable).toBe(true);
    expect(err.mayHaveRun).toBe(mayHaveRun);
    expect(err.message).toMatch(/^Redis SET failed \(key k\): the Redis Cluster is reconfiguring: /);
    expect(err.message).toMatch(mayHaveRun ? /may have run/ : /did not run/);
    // Said in words; the cluster's own answer stays in `cause`.
    expect(err.message).not.toMatch(/\bMOVED\b|\bASK \d|TRYAGAIN|CLUSTERDOWN|READONLY|non local key|Too many Cluster redirections|slots allocation group|Connection is closed|Command timed out/);
    expect((err.cause as Error).message).toBe(message);
  });

  test('a single-Redis connection error stays a RedisOperationError', () => {
    const err = errorFromReply(new Error('Connection is closed.'), 'GET');
    expect(err).not.toBeInstanceOf(ClusterReconfiguringError);
    expect(err).toBeInstanceOf(RedisOperationError);
  });

  test('a command timeout on a Cluster is a ClusterReconfiguringError that may have run (a frozen master); on one Redis a RedisOperationError', async () => {
    const timeout = () => Promise.reject(new Error('Command timed out'));
    const onCluster = await retryFaults(timeout, { operation: 'handleRead', context: { key: 'k' }, timeoutMs: 1000, cluster: true }).catch((e: unknown) => e);
    expect(onCluster).toBeInstanceOf(ClusterReconfiguringError);
    expect((onCluster as ClusterReconfiguringError).mayHaveRun).toBe(true);
    expect((onCluster as Error).message).toMatch(/^Redis handleRead failed \(key k\): the Redis Cluster is reconfiguring: no reply within the command timeout/);
    const single = await retryFaults(timeout, { operation: 'handleRead', context: { key: 'k' }, timeoutMs: 1000, cluster: false }).catch((e: unknown) => e);
    expect(single).not.toBeInstanceOf(ClusterReconfiguringError);
    expect(single).toBeInstanceOf(RedisOperationError);
  });

  test('mayHaveRun and writtenKeys cross processes with the class', () => {
    const e = new ClusterReconfiguringError('x', { mayHaveRun: false, writtenKeys: ['a', 'b'] });
    const back = ProxyStoreError.fromJSON(JSON.parse(JSON.stringify(e))) as ClusterReconfiguringError;
    expect(back).toBeInstanceOf(ClusterReconfiguringError);
    expect(back.mayHaveRun).toBe(false);
    expect(back.writtenKeys).toEqual(['a', 'b']);
  });
});
