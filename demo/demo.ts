/**
 * The demo (`npm run demo`): one producer, several worker processes, one Redis.
 *
 * 1. Finds a Redis (REDIS_URL, else starts a `redis-server` of its own, else
 *    testcontainers, else 127.0.0.1:6379).
 * 2. The producer puts a ~20 MB array once and sends each worker only its
 *    ref (about 150 bytes); every worker resolves it and reports.
 * 3. One ephemeral object is raced for by all workers at once: exactly one
 *    wins, the others learn who consumed it.
 * 4. Everything is evicted; the demo checks that nothing is left in Redis.
 */
import { fork, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Redis } from 'ioredis';
import { ENV_NAMESPACE, ENV_URL, RedisConnector, Store, getKey, toRef } from '../src/index.js';
import { findOrStartRedis } from '../scripts/local-redis.js';
import type { WorkerReport } from './worker.js';

const WORKERS = 4;
const ELEMENTS = 2_500_000; // 2.5 M doubles: 20 MB of numbers
const here = dirname(fileURLToPath(import.meta.url));

const redis = await findOrStartRedis({ log: (m) => console.log(`redis: ${m}`) });
const namespace = `demo-${randomBytes(3).toString('hex')}`;
const store = new Store('demo', new RedisConnector({ url: redis.url, namespace }), { register: true });

function startWorker(id: number): ChildProcess {
  return fork(join(here, 'worker.ts'), [String(id)], {
    execArgv: ['--import', 'tsx'],
    // Workers build their own store from these: refs never carry a URL.
    env: { ...process.env, [ENV_URL]: redis.url, [ENV_NAMESPACE]: namespace },
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
}

function ask(worker: ChildProcess, message: unknown): Promise<WorkerReport> {
  return new Promise((resolveReport, reject) => {
    const onExit = (code: number | null) => reject(new Error(`worker exited with code ${code}`));
    worker.once('exit', onExit);
    worker.once('message', (m) => {
      worker.off('exit', onExit);
      resolveReport(m as WorkerReport);
    });
    worker.send(message as object);
  });
}

let exitCode = 0;
const workers: ChildProcess[] = [];
try {
  console.log(`\nproducer: building an array of ${ELEMENTS.toLocaleString()} numbers`);
  const data = Array.from({ length: ELEMENTS }, (_, i) => (i % 1000) / 8);
  const expectedSum = data.reduce((a, b) => a + b, 0);
  let t = performance.now();
  const big = await store.proxy(data);
  const bytes = (await store.connector.get(getKey(big)))?.length ?? 0;
  console.log(`producer: put it once (${(bytes / 1e6).toFixed(1)} MB in Redis) in ${(performance.now() - t).toFixed(0)} ms`);
  const ref = toRef(big);
  console.log(`producer: its ref is ${JSON.stringify(ref).length} bytes: ${JSON.stringify(ref)}`);

  for (let i = 0; i < WORKERS; i++) workers.push(startWorker(i));
  t = performance.now();
  const reports = await Promise.all(workers.map((w) => ask(w, { task: 'sum', ref })));
  console.log(`\n${WORKERS} workers resolved the ref (wall time ${(performance.now() - t).toFixed(0)} ms):`);
  for (const r of reports) {
    console.log(`  worker ${r.worker} (pid ${r.pid}): ${r.detail}`);
    if (r.result !== expectedSum) {
      console.error(`  worker ${r.worker} got a wrong sum ${r.result}, expected ${expectedSum}`);
      exitCode = 1;
    }
  }

  const prize = await store.proxy({ prize: 'the only copy' }, { evict: true });
  const prizeRef = toRef(prize);
  console.log(`\nan ephemeral object (evict: true) is raced for by all ${WORKERS} workers at once:`);
  const race = await Promise.all(workers.map((w) => ask(w, { task: 'race', ref: prizeRef })));
  for (const r of race) console.log(`  worker ${r.worker} (pid ${r.pid}): ${r.detail}`);
  const winners = race.filter((r) => r.result === 'won').length;
  console.log(`  => ${winners} winner${winners === 1 ? '' : 's'}`);
  if (winners !== 1) exitCode = 1;

  await store.evict(getKey(big));
} finally {
  for (const w of workers) w.send({ task: 'exit' });
  await Promise.all(workers.map((w) => new Promise((r) => (w.exitCode !== null ? r(null) : w.once('exit', r)))));
  await store.close();
  // The consume tombstone and grace copy expire by themselves; nothing else may remain.
  const check = new Redis(redis.url);
  const left = await check.keys(`${namespace}:*`);
  const lasting = [];
  for (const k of left) if ((await check.pttl(k)) === -1) lasting.push(k);
  console.log(`\nleft in Redis: ${lasting.length} key(s) without a TTL, ${left.length - lasting.length} short-lived key(s) (the consume tombstone and its grace copy), now deleted`);
  if (lasting.length > 0) exitCode = 1;
  await check.del(...(left.length ? left : ['-']));
  await check.quit();
  await redis.stop();
}
console.log(exitCode === 0 ? '\ndemo finished: OK' : '\ndemo finished: FAILED');
process.exitCode = exitCode;
