/**
 * A two-stage BullMQ pipeline in which the consumer starts first. The
 * producer makes a future for stage A's output and queues stage B with the
 * future's proxy *before* stage A has run: stage B's worker picks the job up
 * and blocks in Redis (no polling) until stage A's worker sets the result,
 * then wakes within one round trip. The output is consumed once (`evict`),
 * and nothing but refs (~200 bytes) goes through the queues.
 *
 *   PROXYSTORE_REDIS_URL=redis://127.0.0.1:6379 npx tsx examples/future-pipeline.ts
 *
 * BullMQ's keys live under their own prefix, `<namespace>:bull`.
 * (In your code, import from 'proxystore-redis' instead of '../src/index.js'.)
 */
import { resolve as resolvePath } from 'node:path';
import { pathToFileURL } from 'node:url';
import { Queue, QueueEvents, Worker, type Job } from 'bullmq';
import { Redis } from 'ioredis';
import {
  ENV_NAMESPACE,
  ENV_URL,
  Future,
  RedisConnector,
  Store,
  fromRef,
  resolve,
  toRef,
  type FutureRef,
  type ProxyRef,
} from '../src/index.js';

/** The store name both stages share: refs name their store. */
export const STORE = 'pipeline-example';

/** Stage A's job: make `n` samples and set them as the result of `out`. */
export interface GenerateJob {
  n: number;
  out: FutureRef;
}
/** Stage B's job: summarize `input`, the proxy of stage A's (future) output. */
export interface SummarizeJob {
  input: ProxyRef;
}
export interface Summary {
  count: number;
  mean: number;
}

/** BullMQ's key prefix for a proxystore namespace. */
export function bullPrefix(namespace: string): string {
  return `${namespace}:bull`;
}

/** Stage A: compute, then set the future (one script: the value and the wake-up signal). */
export function startGenerator(connection: Redis, namespace: string): Worker<GenerateJob> {
  return new Worker<GenerateJob>(
    'generate',
    async (job) => {
      const samples = Float64Array.from({ length: job.data.n }, (_, i) => Math.sin(i) + 1);
      await Future.fromRef<Float64Array>(job.data.out).setResult(samples);
    },
    { connection, prefix: bullPrefix(namespace) },
  );
}

/** Stage B: resolve the input (waiting, blocked in Redis, until stage A has set it) and summarize it. */
export function startSummarizer(connection: Redis, namespace: string): Worker<SummarizeJob, Summary> {
  return new Worker<SummarizeJob, Summary>(
    'summarize',
    async (job) => {
      const samples = await resolve(fromRef<Float64Array>(job.data.input));
      const total = samples.reduce((a, b) => a + b, 0);
      return { count: samples.length, mean: total / samples.length };
    },
    { connection, prefix: bullPrefix(namespace) },
  );
}

/** Wait until a job is being processed (its worker has it). */
async function untilActive(job: Job): Promise<void> {
  while ((await job.getState()) !== 'active') await new Promise((r) => setTimeout(r, 20));
}

export async function main(): Promise<Summary> {
  const url = process.env[ENV_URL] ?? 'redis://127.0.0.1:6379';
  const namespace = process.env[ENV_NAMESPACE] ?? 'example';
  const store = new Store(STORE, new RedisConnector({ url, namespace }), { register: true });
  // BullMQ's workers block on Redis: their connection must retry for ever.
  const connection = new Redis(url, { maxRetriesPerRequest: null });
  const prefix = bullPrefix(namespace);
  const generate = new Queue<GenerateJob>('generate', { connection, prefix });
  const summarize = new Queue<SummarizeJob, Summary>('summarize', { connection, prefix });
  const events = new QueueEvents('summarize', { connection, prefix });
  const summarizer = startSummarizer(connection, namespace);
  let generator: Worker<GenerateJob> | undefined;
  try {
    await events.waitUntilReady();
    // The consumer first: stage B is queued with the proxy of an output that does not exist yet.
    const output = await store.future<Float64Array>({ evict: true, ttl: 600, timeout: 120 });
    const jobB = await summarize.add('summarize', { input: toRef(output.proxy()) }, { attempts: 1 });
    await untilActive(jobB);
    console.log(`stage B (job ${jobB.id}) is waiting for its input`);
    // Then the producer: stage A computes and sets the future.
    generator = startGenerator(connection, namespace);
    await generate.add('generate', { n: 100_000, out: toRef(output) }, { attempts: 1 });
    const summary = await jobB.waitUntilFinished(events);
    console.log(`stage B woke and summarized ${summary.count} samples: mean ${summary.mean.toFixed(4)}`);
    return summary;
  } finally {
    await summarizer.close();
    await generator?.close();
    await events.close();
    // A demo tidies up; a real queue lives on.
    for (const queue of [generate, summarize]) {
      await queue.obliterate({ force: true });
      await queue.close();
    }
    await connection.quit();
    await store.close();
  }
}

if (process.argv[1] && import.meta.url === pathToFileURL(resolvePath(process.argv[1])).href) {
  main().catch((err: unknown) => {
    console.error(err);
    process.exitCode = 1;
  });
}
