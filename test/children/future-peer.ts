/**
 * A child process that sets or awaits futures it is sent as refs, through its
 * own registered store (same name and namespace as the parent's).
 *
 * Messages in:  { await: FutureRef | ProxyRef (a future's proxy), timeout?: number }
 *               { set: FutureRef, value: unknown }
 * Messages out: { ready: true } once the store is up,
 *               { waiting: true } once the wait was started,
 *               { ok: true, value } | { ok: false, name, message } for each job
 */
import { Future, RedisConnector, Store, fromRef, resolve, type FutureRef } from '../../src/index.js';
import { CHILD_ENV } from '../harness/child.js';
import { connectionOptions, targetFromEnv } from '../harness/target.js';

const namespace = process.env[CHILD_ENV.namespace] as string;
const storeName = process.env.STORE_NAME as string;
const store = new Store(storeName, new RedisConnector({ ...connectionOptions(targetFromEnv()), namespace }), { register: true });

type Job = { await?: FutureRef & { future?: true }; timeout?: number; set?: FutureRef; value?: unknown };

function reply(msg: object): void {
  process.send?.(msg);
}

async function run(job: Job): Promise<unknown> {
  if (job.set) return Future.fromRef(job.set).setResult(job.value);
  const ref = job.await as unknown as { kind?: string };
  const pending =
    ref.kind === 'future'
      ? Future.fromRef(ref).result(job.timeout === undefined ? {} : { timeout: job.timeout })
      : resolve(fromRef<object>(ref)).then((p) => structuredClone(p));
  reply({ waiting: true });
  return pending;
}

process.on('message', (job: Job) => {
  void run(job).then(
    (value) => reply({ ok: true, value: value === undefined ? null : value }),
    (err: Error) => reply({ ok: false, name: err.name, message: err.message }),
  );
});
process.on('disconnect', () => void store.close());
await store.ready();
reply({ ready: true });
