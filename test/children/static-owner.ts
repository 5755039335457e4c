/**
 * Puts objects under the StaticLifetime (store option leaseTtl = LEASE_TTL
 * seconds), sends { ready, keys, lifetimeId, pttls }, then ends as the mode
 * (first argument) says, once the parent sends { go: true }:
 * - `close-store`: closes its store and client and lets the process end;
 * - `before-exit`: lets go of everything that holds the event loop (the Redis
 *   socket, the IPC channel): the process ends by itself, through beforeExit;
 * - `process-exit`: calls process.exit(0) (nothing can run after it);
 * - `wait`: does nothing; the parent signals or kills it;
 * - `own-handler`: like `wait`, with the app's own SIGTERM handler, which
 *   sends { sigterm: true } and exits only on { exit: true };
 * - `drain`: like `wait`, with the app's own graceful SIGTERM drain: it sends
 *   { sigterm: true }, works for DRAIN_MS (default 1000), then calls
 *   `StaticLifetime.instance().close()` (the hook at the end of its drain),
 *   sends { drained: true } and exits 0.
 * STATIC_SIGNALS, if set, is passed as `StaticLifetime.instance({ signals })`.
 */
import type { Socket } from 'node:net';
import { Cluster, type Redis } from 'ioredis';
import { RedisConnector, StaticLifetime, Store, getKey } from '../../src/index.js';
import { CHILD_ENV } from '../harness/child.js';
import { rawClient, targetFromEnv } from '../harness/target.js';

const mode = process.argv[2] ?? 'wait';
// A Redis, or a Cluster (typed as a Redis by rawClient) on the cluster target.
const client = rawClient(targetFromEnv()) as unknown as Redis | Cluster;
const store = new Store(
  'static-child',
  new RedisConnector({ client, namespace: process.env[CHILD_ENV.namespace] as string }),
  { register: true, leaseTtl: Number(process.env.LEASE_TTL ?? 30) },
);
const signals = process.env.STATIC_SIGNALS as 'auto' | 'evict' | 'none' | undefined;
const lifetime = signals === undefined ? StaticLifetime.instance() : StaticLifetime.instance({ signals });
const keys = [
  await store.put('a', { lifetime }),
  ...(await store.putBatch([1, 2], { lifetime })),
  getKey(await store.proxy([1, 2, 3], { lifetime })),
];

function send(msg: unknown): Promise<void> {
  return new Promise((resolve, reject) => process.send?.(msg, undefined, {}, (err) => (err ? reject(err) : resolve())));
}

if (mode === 'own-handler') {
  process.on('SIGTERM', () => {
    void send({ sigterm: true });
  });
}
if (mode === 'drain') {
  process.on('SIGTERM', () => {
    void (async () => {
      await send({ sigterm: true });
      // The application's own work before it ends (in-flight requests, ...).
      await new Promise((r) => setTimeout(r, Number(process.env.DRAIN_MS ?? 1000)));
      await StaticLifetime.instance().close();
      await send({ drained: true });
      process.exit(0);
    })();
  });
}

process.on('message', (msg: { go?: boolean; exit?: boolean }) => {
  if (msg.exit) process.exit(0);
  if (!msg.go) return;
  if (mode === 'close-store') {
    void store.close().then(async () => {
      await client.quit();
      process.disconnect();
    });
  } else if (mode === 'before-exit') {
    // Every socket: a Cluster client holds one per node it has connected to (none for the others).
    for (const node of client instanceof Cluster ? client.nodes() : [client]) (node.stream as Socket | undefined)?.unref();
    process.removeAllListeners('message');
    process.channel?.unref();
  } else if (mode === 'process-exit') {
    process.exit(0);
  }
});

const pttls = await Promise.all(keys.map((k) => client.pttl(store.connector.dataKey(k))));
await send({ ready: true, keys, lifetimeId: lifetime.idIn(store), pttls });
