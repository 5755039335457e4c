/**
 * examples/future-pipeline.ts: a BullMQ pipeline whose consumer starts
 * first. Run as it is (its own process, the test's Redis and namespace): stage
 * B is waiting before stage A runs, and wakes with stage A's output; and with
 * its stages in separate processes from this one: a stage B worker here
 * waits on a future that a process started later sets.
 */
import { Queue, QueueEvents } from 'bullmq';
import { Redis } from 'ioredis';
import { ENV_NAMESPACE, ENV_URL, Future, toRef } from '../../src/index.js';
import { bullPrefix, startSummarizer, type GenerateJob, type Summary, type SummarizeJob } from '../../examples/future-pipeline.js';
import { runChild } from '../harness/child.js';
import { expect, test } from '../harness/store-fixture.js';

test('the example runs: stage B waits first, then wakes with stage A\'s output', { timeout: 120_000 }, async ({ redisUrl, namespace }) => {
  const out = await runChild('examples/future-pipeline.ts', {
    env: { [ENV_URL]: redisUrl, [ENV_NAMESPACE]: namespace },
    timeoutMs: 90_000,
  });
  expect(out.code, out.stderr).toBe(0);
  const lines = out.stdout.trim().split('\n');
  expect(lines[0]).toMatch(/^stage B \(job \d+\) is waiting for its input$/);
  expect(lines[1]).toMatch(/^stage B woke and summarized 100000 samples: mean 1\.\d{4}$/);
});

test('the stages in two processes: the summarizer here, the generator started after it', { timeout: 120_000 }, async ({ store, redisUrl, namespace }) => {
  const connection = new Redis(redisUrl, { maxRetriesPerRequest: null });
  const prefix = bullPrefix(namespace);
  const summarize = new Queue<SummarizeJob, Summary>('summarize', { connection, prefix });
  const generate = new Queue<GenerateJob>('generate', { connection, prefix });
  const events = new QueueEvents('summarize', { connection, prefix });
  const summarizer = startSummarizer(connection, namespace);
  try {
    await events.waitUntilReady();
    const output = await store.future<Float64Array>({ evict: true, ttl: 600, timeout: 60 });
    const job = await summarize.add('summarize', { input: toRef(output.proxy()) });
    // Stage A in another process: a generator worker there sets the future.
    const child = runChild('test/children/future-generator.ts', {
      env: { [ENV_URL]: redisUrl, [ENV_NAMESPACE]: namespace },
      timeoutMs: 90_000,
    });
    await generate.add('generate', { n: 1000, out: toRef(output) });
    const summary = await job.waitUntilFinished(events);
    expect(summary.count).toBe(1000);
    const exit = await child;
    expect(exit.code, exit.stderr).toBe(0);
    await expect(Future.fromRef(toRef(output)).setResult(new Float64Array(1))).rejects.toMatchObject({ name: 'FutureAlreadySetError' });
  } finally {
    await summarizer.close();
    await events.close();
    for (const q of [summarize, generate]) {
      await q.obliterate({ force: true });
      await q.close();
    }
    await connection.quit();
  }
});
