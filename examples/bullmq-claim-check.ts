/**
 * BullMQ with a claim check: the job carries a ~200-byte ref, not the data.
 * The producer puts a large array as an ephemeral proxy (consumed exactly
 * once) and queues a job whose data is the array's ref. The worker consumes
 * the array, scales it, puts the result under a LeaseLifetime (Redis expires
 * it if nobody comes for it) and returns the result's ref as the job's return
 * value. The producer resolves the result.
 *
 *   PROXYSTORE_REDIS_URL=redis://127.0.0.1:6379 npx tsx examples/bullmq-claim-check.ts
 *
 * runs the producer and the worker in one process. As in production, they can
 * also run apart (the worker until Ctrl-C):
 *
 *   PROXYSTORE_REDIS_URL=redis://127.0.0.1:6379 npx tsx examples/bullmq-claim-check.ts worker
 *   PROXYSTORE_REDIS_URL=redis://127.0.0.1:6379 npx tsx examples/bullmq-claim-check.ts producer
 *
 * BullMQ's keys live under their own prefix, `<namespace>:bull`: the library's
 * keys are `<namespace>:{...`, so they never meet, and an ACL can tell them apart.
 * (In your code, import from 'proxystore-redis' instead of '../src/index.js'.)
 */
import { resolve as resolvePath } from 'node:path';
import { pathToFileURL } from 'node:url';
import { Queue, QueueEvents, Worker, type Job } from 'bullmq';
import { Redis } from 'ioredis';
import {
  ENV_NAMESPACE,
  ENV_URL,
  LeaseLifetime,
  RedisConnector,
  Store,
  fromRef,
  resolve,
  toRef,
  type ProxyRef,
} from '../src/index.js';

/** The store name producer and worker share: refs name their store. */
export const STORE = 'bullmq-example';
/** The queue's name. */
export const QUEUE = 'scale';

/** A job's data: the claim check (a ref) and a small parameter. */
export interface ScaleJob {
  input: ProxyRef;
  factor: number;
}
/** A job's return value: the ref of the scaled array. */
export type ScaleResult = ProxyRef;

/** BullMQ's key prefix for a proxystore namespace. */
export function bullPrefix(namespace: string): string {
  return `${namespace}:bull`;
}

/** A connection for BullMQ: its workers block on Redis, so requests must not be retried a fixed number of times. */
export function bullConnection(url: string): Redis {
  return new Redis(url, { maxRetriesPerRequest: null });
}

// ---------------------------------------------------------------- worker side

export interface WorkerOptions {
  /** Seconds the result lives if nobody resolves it; default 300. */
  resultLease?: number;
}

/**
 * The BullMQ worker. It resolves refs through `store` (a registered store
 * named {@link STORE}, or whatever name the producer's refs carry).
 */
export function startWorker(store: Store, connection: Redis, namespace: string, options: WorkerOptions = {}): Worker<ScaleJob, ScaleResult> {
  const resultLease = options.resultLease ?? 300;
  return new Worker<ScaleJob, ScaleResult>(
    QUEUE,
    async (job) => {
      // Consumes the input: the first resolve of an ephemeral ref reads and deletes it, atomically.
      const input = await resolve(fromRef<Float64Array>(job.data.input));
      const output = input.map((v) => v * job.data.factor);
      // The result outlives this job but not its lease: Redis deletes it at the lease end.
      const lease = new LeaseLifetime(store, { expiry: resultLease, name: `${QUEUE}-job-${job.id}` });
      return toRef(await store.proxy(output, { lifetime: lease }));
    },
    { connection, prefix: bullPrefix(namespace) },
  );
}

// -------------------------------------------------------------- producer side

/** Put `values` as an ephemeral object and queue a job that carries only its ref. */
export async function submitJob(queue: Queue<ScaleJob, ScaleResult>, store: Store, values: Float64Array, factor: number): Promise<Job<ScaleJob, ScaleResult>> {
  const input = await store.proxy(values, { evict: true });
  // Ephemeral input: a retried job would find it consumed, so one attempt.
  return queue.add('scale', { input: toRef(input), factor }, { attempts: 1 });
}

/** Wait for the job and resolve its result (before its lease ends). */
export async function awaitResult(job: Job<ScaleJob, ScaleResult>, queueEvents: QueueEvents): Promise<Float64Array> {
  const ref = await job.waitUntilFinished(queueEvents);
  return resolve(fromRef<Float64Array>(ref));
}

// ------------------------------------------------------------------------ demo

async function main(role: string | undefined): Promise<void> {
  const url = process.env[ENV_URL] ?? 'redis://127.0.0.1:6379';
  const namespace = process.env[ENV_NAMESPACE] ?? 'example';
  const store = new Store(STORE, new RedisConnector({ url, namespace }), { register: true });
  const connection = bullConnection(url);
  const prefix = bullPrefix(namespace);
  try {
    if (role === 'worker') {
      const worker = startWorker(store, connection, namespace);
      console.log(`worker waiting for jobs on queue ${prefix}:${QUEUE} (Ctrl-C to stop)`);
      await new Promise<void>((res) => process.once('SIGINT', res).once('SIGTERM', res));
      await worker.close();
      return;
    }
    const queue = new Queue<ScaleJob, ScaleResult>(QUEUE, { connection, prefix });
    const queueEvents = new QueueEvents(QUEUE, { connection, prefix });
    const worker = role === 'producer' ? undefined : startWorker(store, connection, namespace);
    try {
      await queueEvents.waitUntilReady();
      const n = 1_000_000;
      const job = await submitJob(queue, store, Float64Array.from({ length: n }, (_, i) => i), 2);
      console.log(`job ${job.id} queued; its data is ${JSON.stringify(job.data).length} bytes for ${n} numbers`);
      const result = await awaitResult(job, queueEvents);
      console.log(`result resolved: ${result.length} values, last ${result[n - 1]}`);
      try {
        await resolve(fromRef(job.data.input));
      } catch (err) {
        console.log(`input resolved again: ${(err as Error).message}`);
      }
    } finally {
      await worker?.close();
      await queueEvents.close();
      if (role !== 'producer') await queue.obliterate({ force: true }); // a demo tidies up; a real queue lives on
      await queue.close();
    }
  } finally {
    await connection.quit();
    await store.close();
  }
}

if (process.argv[1] && import.meta.url === pathToFileURL(resolvePath(process.argv[1])).href) {
  main(process.argv[2]).catch((err: unknown) => {
    console.error(err);
    process.exitCode = 1;
  });
}
