/**
 * Ownership with a worker_threads pool: the main thread owns a large array,
 * lends each task a shared borrow, and the workers read the array through
 * the borrow's ref. `submit` ends each borrow when its task settles, so the
 * owner can drop the array as soon as the last task is done. This file is
 * both the main thread and the worker.
 *
 *   PROXYSTORE_REDIS_URL=redis://127.0.0.1:6379 npx tsx examples/ownership-pool.ts
 *
 * (In your code, import from 'proxystore-redis' instead of '../src/index.js'.)
 */
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
  type ProxyRef,
} from '../src/index.js';

const STORE = 'pool-example';
const WORKERS = 4;
const TASKS = 8;
const N = 1_000_000;

interface Task {
  id: number;
  ref: ProxyRef;
  start: number;
  end: number;
}
interface Config {
  url: string;
  namespace: string;
}

// ---------------------------------------------------------------- worker side

async function worker(config: Config): Promise<void> {
  // Each worker resolves refs through its own store of the same name.
  const store = new Store(STORE, new RedisConnector(config), { register: true });
  parentPort!.on('message', (msg: Task | 'close') => {
    if (msg === 'close') {
      void store.close().then(() => parentPort!.close());
      return;
    }
    void (async () => {
      // Reviving the ref takes the borrow over: this worker renews it while it works.
      const data = fromRef<Float64Array>(msg.ref);
      const values = await resolve(data);
      let sum = 0;
      for (let i = msg.start; i < msg.end; i++) sum += values[i] as number;
      // The worker could `release(data)` itself here; submit() releases it either way.
      parentPort!.postMessage({ id: msg.id, sum });
    })();
  });
}

// ------------------------------------------------------------------ main side

/** A tiny pool: each worker runs one task at a time. */
class Pool {
  private readonly idle: Worker[] = [];
  private readonly queue: [Omit<Task, 'id'>, (sum: number) => void, (err: Error) => void][] = [];
  private readonly pending = new Map<number, [(sum: number) => void, (err: Error) => void, Worker]>();
  private nextId = 0;

  constructor(size: number, config: Config) {
    for (let i = 0; i < size; i++) {
      const w = startWorker(config);
      w.on('message', ({ id, sum }: { id: number; sum: number }) => {
        const [done, , self] = this.pending.get(id)!;
        this.pending.delete(id);
        done(sum);
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

  async close(): Promise<void> {
    await Promise.all(
      this.idle.map((w) => new Promise<void>((res) => (w.once('exit', () => res()), w.postMessage('close')))),
    );
  }
}

function startWorker(config: Config): Worker {
  const self = new URL(import.meta.url);
  if (self.pathname.endsWith('.ts')) {
    // Running the TypeScript source: Node 20 does not pass `--import tsx` to
    // worker threads, so the worker registers tsx before loading this file.
    const boot = `import('tsx/esm/api').then(({ register }) => { register(); return import(${JSON.stringify(self.href)}); })`;
    return new Worker(boot, { eval: true, workerData: config });
  }
  return new Worker(self, { workerData: config });
}

async function main(): Promise<void> {
  const config: Config = {
    url: process.env[ENV_URL] ?? 'redis://127.0.0.1:6379',
    namespace: process.env[ENV_NAMESPACE] ?? 'example',
  };
  const store = new Store(STORE, new RedisConnector(config), { register: true });
  const pool = new Pool(WORKERS, config);
  try {
    const owned = await store.ownedProxy(Float64Array.from({ length: N }, (_, i) => i));
    const chunk = N / TASKS;
    const sums = await Promise.all(
      Array.from({ length: TASKS }, async (_, t) => {
        const shared = await borrow(owned); // one round trip: a borrow for each task
        // submit passes the borrow as its ref and releases it when the task settles.
        return submit((ref: ProxyRef) => pool.run({ ref, start: t * chunk, end: (t + 1) * chunk }), { args: [shared] });
      }),
    );
    const total = sums.reduce((a, b) => a + b, 0);
    console.log(`${TASKS} tasks on ${WORKERS} workers: sum of ${N} values = ${total}`);
    await drop(owned); // succeeds at once: every borrow ended with its task
    console.log('owner dropped: every borrow had ended');
  } finally {
    await pool.close();
    await store.close();
  }
}

if (isMainThread) {
  main().catch((err: unknown) => {
    console.error(err);
    process.exitCode = 1;
  });
} else {
  void worker(workerData as Config);
}
