/**
 * node:cluster workers sharing one object under a ContextLifetime. The
 * primary puts a large array under a lifetime once and sends each worker only
 * its ref and the lifetime's id. Each worker attaches to the lifetime,
 * resolves the array, and puts its own result under the same lifetime. When
 * the primary has read the results it closes the lifetime: the array and
 * every worker's result are evicted together, and a worker that adds to the
 * lifetime afterwards gets LifetimeEndedError. This file is both the primary
 * and the worker.
 *
 *   PROXYSTORE_REDIS_URL=redis://127.0.0.1:6379 npx tsx examples/cluster-context.ts
 *
 * (In your code, import from 'proxystore-redis' instead of '../src/index.js'.)
 */
import cluster, { type Worker } from 'node:cluster';
import { resolve as resolvePath } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import {
  ContextLifetime,
  ENV_NAMESPACE,
  ENV_URL,
  ProxyStoreError,
  RedisConnector,
  Store,
  fromRef,
  getKey,
  resolve,
  toRef,
  type ProxyRef,
  type ProxyStoreErrorJSON,
} from '../src/index.js';

/** The store name the primary and the workers share: refs name their store. */
export const STORE = 'cluster-example';
/** Set in the workers' environment, so that only this file's workers run {@link worker}. */
const ROLE_ENV = 'PROXYSTORE_CLUSTER_EXAMPLE_WORKER';

/** A worker's share of the work: sum `values[start..end)` of the shared array. */
interface Job {
  type: 'job';
  lifetimeId: string;
  values: ProxyRef;
  start: number;
  end: number;
}
/** What a worker computed, stored under the lifetime. */
export interface PartialSum {
  worker: number;
  start: number;
  end: number;
  sum: number;
}
type ToWorker = Job | { type: 'lifetime-closed' };
type FromWorker =
  | { type: 'ready' }
  | { type: 'result'; partial: ProxyRef }
  | { type: 'late-add'; error: ProxyStoreErrorJSON | null };

// ---------------------------------------------------------------- worker side

async function worker(): Promise<void> {
  // The worker's own store, built from the environment the primary gave it.
  const store = new Store(
    STORE,
    new RedisConnector({ url: process.env[ENV_URL]!, namespace: process.env[ENV_NAMESPACE]! }),
    { register: true },
  );
  let lifetime: ContextLifetime | undefined;
  const send = (msg: FromWorker) => process.send!(msg);

  process.on('message', (msg: ToWorker) => {
    void (async () => {
      if (msg.type === 'job') {
        // The same lifetime, from another process: what we add to it ends with it.
        lifetime = await ContextLifetime.attach(store, msg.lifetimeId);
        const values = await resolve(fromRef<Float64Array>(msg.values));
        let sum = 0;
        for (let i = msg.start; i < msg.end; i++) sum += values[i] as number;
        const partial: PartialSum = { worker: cluster.worker!.id, start: msg.start, end: msg.end, sum };
        send({ type: 'result', partial: toRef(await store.proxy(partial, { lifetime })) });
      } else {
        // The primary closed the lifetime: adding to it now fails, in every process.
        let error: ProxyStoreErrorJSON | null = null;
        try {
          await store.put({ late: true }, { lifetime: lifetime! });
        } catch (err) {
          if (!(err instanceof ProxyStoreError)) throw err;
          error = err.toJSON();
        }
        send({ type: 'late-add', error });
        await store.close(); // the process ends once the primary disconnects it
      }
    })().catch((err: unknown) => {
      console.error(err);
      process.exit(1);
    });
  });
  // Messages that arrive before a listener exists are lost: say when we listen.
  send({ type: 'ready' });
}

// ------------------------------------------------------------------ primary side

/** The next message of a type from a worker; rejects if the worker exits first. */
function nextMessage<T extends FromWorker['type']>(w: Worker, type: T): Promise<Extract<FromWorker, { type: T }>> {
  return new Promise((res, rej) => {
    const onMessage = (msg: FromWorker) => {
      if (msg.type !== type) return;
      w.off('message', onMessage).off('exit', onExit);
      res(msg as Extract<FromWorker, { type: T }>);
    };
    const onExit = (code: number | null, signal: string | null) => {
      w.off('message', onMessage);
      rej(new Error(`worker ${w.id} exited (code ${code}, signal ${signal}) before sending '${type}'`));
    };
    w.on('message', onMessage).once('exit', onExit);
  });
}

export interface ClusterOptions {
  url: string;
  namespace: string;
  /** How many worker processes; default 2. */
  workers?: number;
  /** Length of the shared array; default 1,000,000. */
  n?: number;
}

/** What the primary saw. */
export interface ClusterReport {
  lifetimeId: string;
  /** The sum of the shared array, from the workers' partial sums. */
  total: number;
  /** Keys of the shared array and of every worker's result, all under the lifetime. */
  keys: string[];
  /** Whether each of `keys` existed before the close (all true). */
  existedBeforeClose: boolean[];
  /** Whether each of `keys` exists after the close (all false). */
  existsAfterClose: boolean[];
  /** What each worker got when it added to the lifetime after the close. */
  lateAdds: (ProxyStoreError | null)[];
}

/** Run the primary: fork the workers, share the array, close the lifetime, and report. */
export async function runPrimary(options: ClusterOptions): Promise<ClusterReport> {
  const { url, namespace, workers: size = 2, n = 1_000_000 } = options;
  const self = fileURLToPath(import.meta.url);
  // Workers run this file; a .ts file needs tsx in the worker too.
  cluster.setupPrimary({ exec: self, execArgv: self.endsWith('.ts') ? ['--import', 'tsx'] : [] });

  const store = new Store(STORE, new RedisConnector({ url, namespace }), { register: true });
  const lifetime = await new ContextLifetime(store, { name: 'cluster-example' }).waitUntilReady();
  const workers: Worker[] = [];
  try {
    const values = await store.proxy(Float64Array.from({ length: n }, (_, i) => i), { lifetime });

    const env = { [ENV_URL]: url, [ENV_NAMESPACE]: namespace, [ROLE_ENV]: '1' };
    for (let i = 0; i < size; i++) workers.push(cluster.fork(env));
    await Promise.all(workers.map((w) => nextMessage(w, 'ready')));

    // Each worker gets the array's ref (about 150 bytes) and the lifetime's id.
    const chunk = Math.ceil(n / size);
    const results = workers.map((w, i) => {
      const result = nextMessage(w, 'result');
      const job: Job = { type: 'job', lifetimeId: lifetime.id, values: toRef(values), start: i * chunk, end: Math.min(n, (i + 1) * chunk) };
      w.send(job);
      return result;
    });
    const partials = await Promise.all(
      (await Promise.all(results)).map(async ({ partial }) => resolve(fromRef<PartialSum>(partial))),
    );
    const total = partials.reduce((a, p) => a + p.sum, 0);

    const keys = [getKey(values), ...(await Promise.all(results)).map(({ partial }) => partial.key)];
    const existedBeforeClose = await Promise.all(keys.map((k) => store.exists(k)));
    await lifetime.close(); // evicts the array and every worker's result, in one place
    const existsAfterClose = await Promise.all(keys.map((k) => store.exists(k)));

    const lateAdds = await Promise.all(
      workers.map(async (w) => {
        const reply = nextMessage(w, 'late-add');
        w.send({ type: 'lifetime-closed' } satisfies ToWorker);
        const { error } = await reply;
        return error && ProxyStoreError.fromJSON(error);
      }),
    );
    return { lifetimeId: lifetime.id, total, keys, existedBeforeClose, existsAfterClose, lateAdds };
  } finally {
    await lifetime.close(); // a no-op after the close above; ends the lifetime if something failed
    await Promise.all(
      workers.map((w) =>
        w.isDead() ? undefined : new Promise<void>((res) => (w.once('exit', () => res()), w.disconnect())),
      ),
    );
    await store.close();
  }
}

async function main(): Promise<void> {
  const workers = 2;
  const report = await runPrimary({
    url: process.env[ENV_URL] ?? 'redis://127.0.0.1:6379',
    namespace: process.env[ENV_NAMESPACE] ?? 'example',
    workers,
  });
  console.log(`${workers} workers summed the shared array: ${report.total}`);
  console.log(`lifetime ${report.lifetimeId} held ${report.keys.length} objects; after close, left: ${report.existsAfterClose.filter(Boolean).length}`);
  for (const err of report.lateAdds) console.log(`a worker adding after the close: ${err?.name}: ${err?.message}`);
}

if (cluster.isWorker && process.env[ROLE_ENV] === '1') {
  void worker();
} else if (cluster.isPrimary && process.argv[1] && import.meta.url === pathToFileURL(resolvePath(process.argv[1])).href) {
  main().catch((err: unknown) => {
    console.error(err);
    process.exitCode = 1;
  });
}
