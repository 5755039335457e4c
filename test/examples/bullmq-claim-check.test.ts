/**
 * examples/bullmq-claim-check.ts: a BullMQ job carries only a ref; the
 * worker consumes the ephemeral input and returns a ref under a lease.
 *
 * BullMQ's keys go under `<namespace>:bull`, inside the test's namespace, so
 * the harness's leak check sees them: they have no TTL, and the `bull`
 * fixture obliterates the queue after each test.
 */
import { Queue, QueueEvents, type Worker } from 'bullmq';
import { ENV_NAMESPACE, ENV_URL, ProxyResolveMissingKeyError, fromRef, resolve, type Store } from '../../src/index.js';
import {
  QUEUE,
  awaitResult,
  bullConnection,
  bullPrefix,
  startWorker,
  submitJob,
  type ScaleJob,
  type ScaleResult,
  type WorkerOptions,
} from '../../examples/bullmq-claim-check.js';
import { runChild } from '../harness/child.js';
import { expect, namespaceKeys, test as base } from '../harness/store-fixture.js';
import { waitUntil } from '../lifetimes/util.js';

interface Bull {
  queue: Queue<ScaleJob, ScaleResult>;
  queueEvents: QueueEvents;
  /** Start the example's worker (closed after the test). */
  startWorker(store: Store, options?: WorkerOptions): Worker<ScaleJob, ScaleResult>;
}

const test = base.extend('bull', async ({ store, redisUrl, namespace }, { onCleanup }): Promise<Bull> => {
  // `store` is a dependency so that it is closed after the workers that use it.
  void store;
  const connection = bullConnection(redisUrl);
  const prefix = bullPrefix(namespace);
  const queue = new Queue<ScaleJob, ScaleResult>(QUEUE, { connection, prefix });
  const queueEvents = new QueueEvents(QUEUE, { connection, prefix });
  const workers: Worker<ScaleJob, ScaleResult>[] = [];
  onCleanup(async () => {
    await Promise.all(workers.map((w) => w.close()));
    await queueEvents.close();
    await queue.obliterate({ force: true }); // BullMQ's keys have no TTL: delete them
    await queue.close();
    await connection.quit();
  });
  await queueEvents.waitUntilReady();
  return {
    queue,
    queueEvents,
    startWorker(workerStore, options) {
      const worker = startWorker(workerStore, connection, namespace, options);
      workers.push(worker);
      return worker;
    },
  };
});

const N = 100_000;
const values = () => Float64Array.from({ length: N }, (_, i) => i);

test('the job carries only a ref, and completes with the ref of its result', async ({ store, bull }) => {
  bull.startWorker(store);
  const job = await submitJob(bull.queue, store, values(), 3);
  expect(JSON.stringify(job.data).length).toBeLessThan(300); // for 800 KB of input
  const result = await awaitResult(job, bull.queueEvents);
  expect(result).toBeInstanceOf(Float64Array);
  expect(result).toHaveLength(N);
  expect(result[N - 1]).toBe(3 * (N - 1));
});

test('the worker consumes the input: it is gone, and resolving its ref again names the consumer', async ({ store, bull }) => {
  bull.startWorker(store);
  const job = await submitJob(bull.queue, store, values(), 2);
  await awaitResult(job, bull.queueEvents);
  expect(await store.exists(job.data.input.key)).toBe(false);
  const again = resolve(fromRef(job.data.input));
  await expect(again).rejects.toBeInstanceOf(ProxyResolveMissingKeyError);
  // The worker ran in this process, at the resolve in the example's processor.
  await expect(again).rejects.toThrow(new RegExp(`consumed by pid ${process.pid} on .* at \\S*examples/bullmq-claim-check\\.ts:\\d+`));
});

test('a second job with the same claim check fails: the input is consumed once', async ({ store, bull }) => {
  bull.startWorker(store);
  const first = await submitJob(bull.queue, store, values(), 2);
  await awaitResult(first, bull.queueEvents);
  const duplicate = await bull.queue.add('scale', first.data, { attempts: 1 });
  await expect(duplicate.waitUntilFinished(bull.queueEvents)).rejects.toThrow(/was consumed by pid \d+/);
});

test('the result expires with its lease when nobody resolves it', { timeout: 60_000 }, async ({ store, bull, redis, namespace }) => {
  bull.startWorker(store, { resultLease: 1 });
  const job = await submitJob(bull.queue, store, values(), 2);
  const ref = await job.waitUntilFinished(bull.queueEvents); // the ref only: nothing resolves it
  const lifetimeId = ref.key.split('~')[0] as string; // an object made under a lifetime has key <lifetime id>~<random>
  await waitUntil(async () => !(await store.exists(ref.key)), 'the result expired');
  await waitUntil(async () => !(await namespaceKeys(redis, namespace)).some((k) => k.includes(lifetimeId)), "the lease's own keys expired");
});

test('the example runs on its own, as its README section says', { timeout: 60_000 }, async ({ redisUrl, namespace, redis }) => {
  const out = await runChild('examples/bullmq-claim-check.ts', {
    env: { [ENV_URL]: redisUrl, [ENV_NAMESPACE]: namespace },
    timeoutMs: 50_000,
  });
  expect(out.stderr).toBe('');
  expect(out.code).toBe(0);
  expect(out.stdout).toMatch(/job 1 queued; its data is \d+ bytes for 1000000 numbers/);
  expect(out.stdout).toContain(`result resolved: 1000000 values, last ${2 * 999_999}`);
  expect(out.stdout).toMatch(/input resolved again: key \S+ of store bullmq-example was consumed by pid \d+/);
  // The demo obliterated its queue: no BullMQ key is left.
  expect((await namespaceKeys(redis, namespace)).filter((k) => k.startsWith(`${namespace}:bull:`))).toEqual([]);
});
