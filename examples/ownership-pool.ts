/**
 * Ownership with a worker_threads pool: the main thread owns a large array,
 * lends each task a shared borrow, and the workers read the array through
 * the borrow's ref. `submit` ends each borrow when its task settles, fulfilled
 * or rejected, so the owner can drop the array as soon as the last task is
 * done. This file is both the main thread and the worker.
 *
 *   PROXYSTORE_REDIS_URL=redis://127.0.0.1:6379 npx tsx examples/ownership-pool.ts
 *
 * With Piscina the shape is the same: `submit((ref) => piscina.run({ ref, start, end }), { args: [shared] })`.
 * (In your code, import from 'proxystore-redis' instead of '../src/index.js'.)
 */
import { resolve as resolvePath } from 'node:path';
import { pathToFileURL } from 'node:url';
import { Worker, isMainThread, parentPort, workerData } from 'node:worker_threads';
import {
  ENV_NAMESPACE,
  ENV_URL,
  RedisConnector,
  Store,
  borrow,
  drop,
  fromRef,
  resolve,
  submit,
  type OwnedProxy,
  type ProxyRef,
} from '../src/index.js';

/** The store name the main thread and the workers share: refs name their store. */
export const STORE = 'pool-example';
const WORKERS = 4;
const TASKS = 8;
const N = 1_000_000;

/** What a worker needs to build its own store. */
export interface PoolConfig {
  url: string;
  namespace: string;
  /** The store's name; default {@link STORE}. */
  store?: string;
}

/** Which part of the array a task sums: indexes `start` (included) to `end` (excluded). */
export interface Slice {
  start: number;
  end: number;
}

interface Task extends Slice {
  id: number;
  ref: ProxyRef;
}
type Reply = { id: number; sum: number } | { id: number; error: string };

/** Marks this file's own worker threads (workerData), so importing the file never starts one. */
const ROLE = 'ownership-pool-worker';

// ---------------------------------------------------------------- worker side

function worker(config: PoolConfig): void {
  // Each worker resolves refs through its own store of the same name.
  const store = new Store(config.store ?? STORE, new RedisConnector({ url: config.url, namespace: config.namespace }), { register: true });
  parentPort!.on('message', (msg: Task | 'close') => {
    if (msg === 'close') {
      void store.close().then(() => parentPort!.close());
      return;
    }
    void (async (): Promise<Reply> => {
      try {
        // Reviving the ref takes the borrow over: this worker renews it while it works.
        const data = fromRef<Float64Array>(msg.ref);
        const values = await resolve(data);
        if (msg.start < 0 || msg.end > values.length || msg.start > msg.end) {
          throw new RangeError(`slice ${msg.start}..${msg.end} is out of range of ${values.length} values`);
        }
        let sum = 0;
        for (let i = msg.start; i < msg.end; i++) sum += values[i] as number;
        // The worker could `release(data)` itself here; submit() releases it either way.
        return { id: msg.id, sum };
      } catch (err) {
        // A failed task fails its promise in the main thread; the worker lives on.
        return { id: msg.id, error: err instanceof Error ? err.message : String(err) };
      }
    })().then((reply) => parentPort!.postMessage(reply));
  });
}

// ------------------------------------------------------------------ main side

type Pending = [(sum: number) => void, (err: Error) => void, Worker];

/** A tiny pool: each worker runs one task at a time. */
export class Pool {
  private readonly idle: Worker[] = [];
  private readonly queue: [Omit<Task, 'id'>, (sum: number) => void, (err: Error) => void][] = [];
  private readonly pending = new Map<number, Pending>();
  private nextId = 0;

  constructor(size: number, config: PoolConfig) {
    for (let i = 0; i < size; i++) {
      const w = startWorker(config);
      w.on('message', (reply: Reply) => {
        const [done, fail, self] = this.pending.get(reply.id)!;
        this.pending.delete(reply.id);
        if ('error' in reply) fail(new Error(reply.error));
        else done(reply.sum);
        this.release(self);
      });
      w.on('error', (err) => {
        for (const [id, [, fail, self]] of this.pending) {
          if (self !== w) continue;
          this.pending.delete(id);
          fail(err);
        }
      });
      this.idle.push(w);
    }
  }

  /** Run one task; resolves with its sum, rejects with the worker's error. */
  run(task: Omit<Task, 'id'>): Promise<number> {
    return new Promise((done, fail) => {
      this.queue.push([task, done, fail]);
      this.dispatch();
    });
  }

  private release(w: Worker): void {
    this.idle.push(w);
    this.dispatch();
  }

  private dispatch(): void {
    while (this.idle.length > 0 && this.queue.length > 0) {
      const w = this.idle.pop()!;
      const [task, done, fail] = this.queue.shift()!;
      const id = this.nextId++;
      this.pending.set(id, [done, fail, w]);
      w.postMessage({ ...task, id });
    }
  }

  /** Close every worker's store and end the workers (call once no task is running). */
  async close(): Promise<void> {
    await Promise.all(
      this.idle.map((w) => new Promise<void>((res) => (w.once('exit', () => res()), w.postMessage('close')))),
    );
  }
}

function startWorker(config: PoolConfig): Worker {
  const self = new URL(import.meta.url);
  const data = { ...config, role: ROLE };
  if (self.pathname.endsWith('.ts')) {
    // Running the TypeScript source: Node 20 does not pass `--import tsx` to
    // worker threads, so the worker registers tsx before loading this file.
    const boot = `import('tsx/esm/api').then(({ register }) => { register(); return import(${JSON.stringify(self.href)}); })`;
    return new Worker(boot, { eval: true, workerData: data });
  }
  return new Worker(self, { workerData: data });
}

/**
 * Sum one slice of an owned array in the pool. The task gets a borrow of its
 * own (one round trip), passed as its ref; `submit` releases it when the task
 * settles, whether it returned or threw.
 */
export async function sumSlice(owned: OwnedProxy<Float64Array>, pool: Pool, slice: Slice): Promise<number> {
  const shared = await borrow(owned);
  return submit((ref: ProxyRef) => pool.run({ ref, ...slice }), { args: [shared] });
}

async function main(): Promise<void> {
  const config: PoolConfig = {
    url: process.env[ENV_URL] ?? 'redis://127.0.0.1:6379',
    namespace: process.env[ENV_NAMESPACE] ?? 'example',
  };
  const store = new Store(STORE, new RedisConnector(config), { register: true });
  const pool = new Pool(WORKERS, config);
  try {
    const owned = await store.ownedProxy(Float64Array.from({ length: N }, (_, i) => i));
    const chunk = N / TASKS;
    const slices = Array.from({ length: TASKS }, (_, t) => ({ start: t * chunk, end: (t + 1) * chunk }));
    // allSettled, not all: if a task fails, the others still hold their borrows until they end.
    const results = await Promise.allSettled(slices.map((slice) => sumSlice(owned, pool, slice)));
    await drop(owned); // succeeds at once: every borrow ended with its task
    const sums = results.map((r) => {
      if (r.status === 'rejected') throw r.reason;
      return r.value;
    });
    const total = sums.reduce((a, b) => a + b, 0);
    console.log(`${TASKS} tasks on ${WORKERS} workers: sum of ${N} values = ${total}`);
    console.log('owner dropped: every borrow had ended');
  } finally {
    await pool.close();
    await store.close();
  }
}

const role = (workerData as { role?: string } | null)?.role;
if (isMainThread && process.argv[1] && import.meta.url === pathToFileURL(resolvePath(process.argv[1])).href) {
  main().catch((err: unknown) => {
    console.error(err);
    process.exitCode = 1;
  });
} else if (!isMainThread && role === ROLE) {
  worker(workerData as PoolConfig);
}
