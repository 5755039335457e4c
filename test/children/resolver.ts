/**
 * A child process that resolves refs it is sent, through its own registered
 * store (same name and namespace as the parent's, from the environment).
 *
 * Messages in:  { refs: unknown[], via: 'ref' | 'json', waitForGo?: boolean }
 *               { go: true }   (when waitForGo was set: resolve all at once)
 * Messages out: { ready: true } after the store is up,
 *               { results: ({ ok: true, value } | { ok: false, name, message })[] }
 */
import { RedisConnector, Store, fromRef, proxyReviver, resolve } from '../../src/index.js';
import { CHILD_ENV } from '../harness/child.js';
import { connectionOptions, targetFromEnv } from '../harness/target.js';

const namespace = process.env[CHILD_ENV.namespace] as string;
const storeName = process.env.STORE_NAME as string;
const store = new Store(storeName, new RedisConnector({ ...connectionOptions(targetFromEnv()), namespace }), {
  register: true,
});

type Job = { refs: unknown[]; via: 'ref' | 'json'; waitForGo?: boolean };
let job: Job | undefined;

async function run(j: Job): Promise<void> {
  const proxies = j.refs.map((r) =>
    j.via === 'json' ? (JSON.parse(JSON.stringify(r), proxyReviver) as object) : fromRef<object>(r),
  );
  const results = await Promise.all(
    proxies.map((p) =>
      resolve(p).then(
        (value) => ({ ok: true as const, value }),
        (err: Error) => ({ ok: false as const, name: err.name, message: err.message }),
      ),
    ),
  );
  process.send?.({ results }, () => {
    void store.close().then(() => process.disconnect());
  });
}

process.on('message', (msg: { go?: boolean } & Partial<Job>) => {
  if (msg.go && job) void run(job);
  else if (msg.refs) {
    job = msg as Job;
    if (!job.waitForGo) void run(job);
  }
});
process.send?.({ ready: true });
